// Package delivery ships finalised recordings (the WAV and its JSON document) to archives (WebDAV, S3) and
// tells webhooks about them, from a durable queue of job files under <recordings>/.queue/: at-least-once,
// under the same object names every time, the WAV before the JSON, retried with backoff and then from a
// retry buffer for as long as it takes. See README.md.
package delivery
