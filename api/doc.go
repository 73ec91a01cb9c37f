// Package api owns the index of recordings and the HTTP API under /api/v1: listing and searching recordings,
// their metadata documents, audio (with Range requests) and waveform peaks, the live media sessions, and
// an index rebuild. The index is a cache of the metadata documents the recorder writes, kept current through
// recorder.WithDocumentHook and rebuildable from disk at any time. See README.md for the contract.
package api
