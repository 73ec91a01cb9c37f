package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	// ErrBadCredentials: the OAuth client was refused (invalid_client). Retrying cannot help.
	ErrBadCredentials = errors.New("genesys: OAuth client credentials refused")
	// ErrRateLimited: Genesys asked us to wait longer than MaxRetryAfter.
	ErrRateLimited = errors.New("genesys: rate limited for longer than allowed")
)

// APIError is a non-2xx answer from the Genesys API.
type APIError struct {
	Status        int
	Message       string
	CorrelationID string // ININ-Correlation-Id: what Genesys support asks for
}

func (e *APIError) Error() string {
	return fmt.Sprintf("genesys API: HTTP %d: %s (correlation %s)", e.Status, e.Message, e.CorrelationID)
}

// client talks to one tenant's Genesys Cloud API: a client-credentials token renewed at 85 % of its life and
// on a 401, and requests retried after 429 (Retry-After), 5xx and transport errors.
type client struct {
	api, login   string
	id, secret   string
	hc           *http.Client
	log          *slog.Logger
	now          func() time.Time
	sleep        func(ctx context.Context, d time.Duration) error
	maxRetryWait time.Duration
	onRetry      func(reason string)

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Token returns a valid access token, fetching a new one when the current one is due.
func (c *client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.renewAt) {
		return c.token, nil
	}
	return c.fetchToken(ctx)
}

// invalidate drops the cached token (after a 401) unless it was already replaced.
func (c *client) invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// fetchToken runs the client-credentials grant (research §1.1). Called with mu held, so concurrent callers
// wait for one request rather than each asking for a token.
func (c *client) fetchToken(ctx context.Context) (string, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.login+"/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		if err != nil {
			return "", err
		}
		req.SetBasicAuth(c.id, c.secret)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := c.hc.Do(req)
		if err != nil {
			if err := c.backoff(ctx, attempt, "token transport", err); err != nil {
				return "", err
			}
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		switch {
		case res.StatusCode == http.StatusOK:
			var t struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
				return "", fmt.Errorf("genesys token response unreadable: %v", err)
			}
			c.token = t.AccessToken
			life := time.Duration(t.ExpiresIn) * time.Second
			c.renewAt = c.now().Add(life * 85 / 100)
			return c.token, nil
		case res.StatusCode == http.StatusTooManyRequests:
			if err := c.wait429(ctx, res, attempt); err != nil {
				return "", err
			}
		case res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented:
			if err := c.backoff(ctx, attempt, "token "+res.Status, nil); err != nil {
				return "", err
			}
		case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusBadRequest:
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.Unmarshal(body, &e)
			return "", fmt.Errorf("%w: HTTP %d %s (%s)", ErrBadCredentials, res.StatusCode, e.Error, e.Description)
		default:
			return "", &APIError{Status: res.StatusCode, Message: "token request refused", CorrelationID: res.Header.Get("ININ-Correlation-Id")}
		}
	}
}

const maxAttempts = 6

// backoff waits before another attempt: 1 s doubling to 30 s, with jitter; after maxAttempts it gives up.
func (c *client) backoff(ctx context.Context, attempt int, reason string, cause error) error {
	if attempt+1 >= maxAttempts {
		if cause != nil {
			return fmt.Errorf("genesys: %s: giving up after %d attempts: %w", reason, maxAttempts, cause)
		}
		return fmt.Errorf("genesys: %s: giving up after %d attempts", reason, maxAttempts)
	}
	if c.onRetry != nil {
		c.onRetry(reason)
	}
	d := min(time.Second<<attempt, 30*time.Second)
	d = d/2 + rand.N(d/2+1)
	c.log.Warn("genesys request retried", "reason", reason, "error", cause, "wait", d)
	return c.sleep(ctx, d)
}

// wait429 honours Retry-After (or inin-ratelimit-reset); a wait longer than maxRetryWait is an error, as in
// Genesys's own SDK retry policy.
func (c *client) wait429(ctx context.Context, res *http.Response, attempt int) error {
	if attempt+1 >= maxAttempts {
		return fmt.Errorf("%w: still 429 after %d attempts", ErrRateLimited, maxAttempts)
	}
	wait := time.Duration(0)
	for _, h := range []string{"Retry-After", "inin-ratelimit-reset"} {
		if n, err := strconv.Atoi(strings.TrimSpace(res.Header.Get(h))); err == nil && n >= 0 {
			wait = time.Duration(n) * time.Second
			break
		}
	}
	if wait > c.maxRetryWait {
		return fmt.Errorf("%w: Retry-After %s exceeds %s", ErrRateLimited, wait, c.maxRetryWait)
	}
	if wait == 0 {
		wait = min(time.Second<<attempt, 30*time.Second)
	}
	if c.onRetry != nil {
		c.onRetry("429")
	}
	c.log.Warn("genesys rate limit: waiting", "path", res.Request.URL.Path, "wait", wait, "correlation_id", res.Header.Get("ININ-Correlation-Id"))
	return c.sleep(ctx, wait)
}

// do sends an API request with the bearer token; in (if not nil) is sent as JSON, out (if not nil) receives
// the JSON answer.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return err
		}
	}
	renewed := false
	for attempt := 0; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, c.api+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := c.backoff(ctx, attempt, method+" "+path, err); err != nil {
				return err
			}
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 32<<20))
		res.Body.Close()
		switch {
		case res.StatusCode >= 200 && res.StatusCode < 300:
			if out != nil && len(body) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return fmt.Errorf("genesys %s %s: response unreadable: %w", method, path, err)
				}
			}
			return nil
		case res.StatusCode == http.StatusUnauthorized && !renewed:
			renewed = true // the token was revoked or expired early: one new token, then give up
			c.invalidate(tok)
		case res.StatusCode == http.StatusTooManyRequests:
			if err := c.wait429(ctx, res, attempt); err != nil {
				return err
			}
		case res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented:
			if err := c.backoff(ctx, attempt, method+" "+path+": "+res.Status, nil); err != nil {
				return err
			}
		default:
			var e struct {
				Message string `json:"message"`
			}
			json.Unmarshal(body, &e)
			return &APIError{Status: res.StatusCode, Message: e.Message, CorrelationID: res.Header.Get("ININ-Correlation-Id")}
		}
	}
}

// status is do for requests whose answer is only a status (HEAD): it reports whether the API said 2xx,
// and false with no error for a 404.
func (c *client) exists(ctx context.Context, path string) (bool, error) {
	err := c.do(ctx, http.MethodHead, path, nil, nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}
