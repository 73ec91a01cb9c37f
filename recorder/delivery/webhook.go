package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/siphook/siphook/recorder"
)

// Webhook request headers.
const (
	HeaderEvent     = "X-Siphook-Event"     // recording.completed, recording.failed, recording.not_recorded
	HeaderTimestamp = "X-Siphook-Timestamp" // unix seconds of this attempt
	HeaderSignature = "X-Siphook-Signature" // sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
)

// WebhookPayload is the JSON body POSTed to webhooks. It is the same on every attempt of an event
// (only the timestamp header and the signature change): receivers deduplicate on (recording_id, event).
type WebhookPayload struct {
	Event       string            `json:"event"`
	RecordingID string            `json:"recording_id"`
	Time        time.Time         `json:"time"` // when the event was queued
	Document    recorder.Document `json:"document"`
}

// webhook POSTs events to one configured endpoint.
type webhook struct {
	cfg    WebhookConfig
	client *http.Client
}

func newWebhook(cfg WebhookConfig) *webhook {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	return &webhook{cfg: cfg, client: &http.Client{
		Timeout: cfg.Timeout,
		// A redirect would turn the POST into a GET: treat it as the failure it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// wants reports whether the webhook takes this event (configuration name); no events configured: all.
func (w *webhook) wants(event string) bool {
	return len(w.cfg.Events) == 0 || slices.Contains(w.cfg.Events, event)
}

// send POSTs the event of rec, signed at now. 2xx is success; 400, 405, 410, 413, 415 and 422 are *Permanent
// (they go to the retry buffer at once); anything else is retried.
func (w *webhook) send(ctx context.Context, rec *jobFile, now time.Time) (int64, error) {
	body, err := json.Marshal(WebhookPayload{Event: rec.Event, RecordingID: rec.RecordingID, Time: rec.Created, Document: rec.Document})
	if err != nil {
		return 0, &Permanent{Err: fmt.Errorf("webhook %s: %w", w.cfg.Name, err)}
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &Permanent{Err: fmt.Errorf("webhook %s: %w", w.cfg.Name, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "siphook")
	req.Header.Set(HeaderEvent, rec.Event)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sign(w.cfg.Secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook %s: %w", w.cfg.Name, err) // *url.Error: http.Client strips passwords from URLs
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return int64(len(body)), nil
	}
	err = fmt.Errorf("webhook %s: HTTP %s", w.cfg.Name, resp.Status)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusGone, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return 0, &Permanent{Err: err}
	}
	return 0, err
}

// sign is X-Siphook-Signature: "sha256=" and the hex HMAC-SHA256, keyed with the secret, of the timestamp,
// a dot and the body.
func sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
