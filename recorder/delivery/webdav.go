package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// WebDAVOption configures NewWebDAV.
type WebDAVOption func(*webdavOptions)

type webdavOptions struct {
	transport http.RoundTripper
}

// WithWebDAVTransport sends the requests through rt instead of a transport built from the target's CAFile
// and InsecureSkipVerify (those are then ignored). Authentication is still added on top of rt.
func WithWebDAVTransport(rt http.RoundTripper) WebDAVOption {
	return func(o *webdavOptions) { o.transport = rt }
}

// WebDAVStatusError is an HTTP status a WebDAV server answered that the request cannot go on with. It
// wraps *Permanent when retrying cannot help (see NewWebDAV); it never holds credentials.
type WebDAVStatusError struct {
	Target     string
	Method     string
	URL        string // without user info
	StatusCode int
	Status     string // e.g. "409 Conflict"
	Location   string // of a redirect
}

func (e *WebDAVStatusError) Error() string {
	msg := fmt.Sprintf("delivery: webdav target %q: %s %s: %s", e.Target, e.Method, e.URL, e.Status)
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		msg += " (check the target's username, password and auth)"
	case e.Location != "":
		msg += " (redirected to " + e.Location + "; configure that URL instead)"
	}
	return msg
}

// webdavRetryable4xx are the client errors that may go away without a change here: credentials or
// permissions fixed on either side (401, 403), collections appearing or coming back (404, 409), locks
// released (423), rate limits (429), slow links (408).
var webdavRetryable4xx = map[int]bool{
	http.StatusUnauthorized: true, http.StatusForbidden: true, http.StatusNotFound: true,
	http.StatusRequestTimeout: true, http.StatusConflict: true, http.StatusLocked: true,
	http.StatusTooManyRequests: true,
}

// webdav is a Target storing files on a WebDAV server (Apache mod_dav, nginx, IIS, Nextcloud, …) under
// <url>/<prefix>/<name>.
type webdav struct {
	name    string
	base    *url.URL // the collection files go under; path ends in '/'
	prefix  string   // clean relative path or ""
	verify  string   // VerifyHead or VerifyReadback
	timeout time.Duration
	client  *http.Client

	mu          sync.Mutex
	collections map[string]bool // relative collection paths known to exist (created or found)
}

// NewWebDAV returns a target that PUTs files to cfg.URL (with Content-Length, after creating missing parent
// collections with MKCOL) and verifies them by HEAD (size) or by reading them back (size and SHA-256), as
// cfg.Verify says. Authentication is basic or digest (cfg.Auth; basic when a username is set and Auth is
// empty); https trusts the system's roots plus cfg.CAFile.
//
// cfg.Timeout (DefaultTargetTimeout when 0) bounds each request's silence rather than its length: a request
// fails when no byte has been sent or received for that long, so large recordings on slow links still get
// through while a hung server is given up on.
//
// Errors: statuses 401, 403, 404, 408, 409, 423, 429, every 5xx, network errors and timeouts are retryable;
// other 4xx and redirects wrap *Permanent. Verify returns ErrMismatch (wrapped) when the stored file is
// missing or differs. Put may read body more than once (it seeks to the start first each time).
func NewWebDAV(cfg TargetConfig, opts ...WebDAVOption) (Target, error) {
	var o webdavOptions
	for _, opt := range opts {
		opt(&o)
	}
	fail := func(format string, args ...any) (Target, error) {
		return nil, fmt.Errorf("delivery: webdav target %q: "+format, append([]any{cfg.Name}, args...)...)
	}

	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fail("url: must be http(s)://host/path")
	}
	if base.User != nil {
		return fail("url: put credentials in username and password, not in the URL")
	}
	base.RawQuery, base.Fragment, base.RawFragment = "", "", ""
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}

	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" && (!validObjectPath(prefix) || path.Clean(prefix) != prefix) {
		return fail("prefix %q: must be a clean relative path without . or .. segments", cfg.Prefix)
	}
	verify := cfg.Verify
	switch verify {
	case "":
		verify = DefaultVerify
	case VerifyHead, VerifyReadback:
	default:
		return fail("verify %q: must be %s or %s", cfg.Verify, VerifyHead, VerifyReadback)
	}
	timeout := cfg.Timeout
	if timeout < 0 {
		return fail("timeout %v: must not be negative", cfg.Timeout)
	}
	if timeout == 0 {
		timeout = DefaultTargetTimeout
	}

	rt := o.transport
	if rt == nil {
		tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone()
		}
		tr.ExpectContinueTimeout = time.Second // a 401 or 413 comes before the body is sent
		tr.MaxIdleConnsPerHost = 2 * DefaultWorkers
		if base.Scheme == "https" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
			if cfg.CAFile != "" {
				pool, err := webdavCertPool(cfg.CAFile)
				if err != nil {
					return fail("ca_file: %v", err)
				}
				tc.RootCAs = pool
			}
			tr.TLSClientConfig = tc
		}
		rt = tr
	}
	auth := cfg.Auth
	if auth == "" && cfg.Username != "" {
		auth = "basic"
	}
	switch auth {
	case "":
	case "basic":
		if cfg.Username == "" {
			return fail("auth basic: needs a username")
		}
		rt = &webdavBasicAuth{user: cfg.Username, password: cfg.Password, next: rt}
	case "digest":
		if cfg.Username == "" {
			return fail("auth digest: needs a username")
		}
		// Probe: with no challenge cached yet, a bodyless request fetches one, so a recording is not sent
		// only to be refused.
		rt = &digest.Transport{Username: cfg.Username, Password: cfg.Password, Transport: rt, Probe: true}
	default:
		return fail("auth %q: must be basic or digest", cfg.Auth)
	}

	return &webdav{
		name:    cfg.Name,
		base:    base,
		prefix:  prefix,
		verify:  verify,
		timeout: timeout,
		client: &http.Client{
			Transport: rt,
			// A PUT redirected with 301/302 would be replayed as a GET and "succeed": redirects are errors.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		collections: map[string]bool{},
	}, nil
}

// webdavCertPool is the system's roots plus the certificates in file.
func webdavCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

func (w *webdav) Name() string { return w.name }

// CloseIdleConnections closes the keep-alive connections not in use (for a Delivery's Close, and tests).
func (w *webdav) CloseIdleConnections() { w.client.CloseIdleConnections() }

// Put creates the missing parent collections of name, then PUTs the file. A PUT refused with 404 or 409
// (a collection we created was removed since) forgets the collections and tries once more.
func (w *webdav) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sha256, contentType string) error {
	rel, err := w.rel(name)
	if err != nil {
		return err
	}
	if size < 0 {
		return &Permanent{Err: fmt.Errorf("delivery: webdav target %q: put %s: negative size %d", w.name, name, size)}
	}
	src := &webdavBody{rs: body, size: size, pos: -1}
	for attempt := 0; ; attempt++ {
		mkcolErr, err := w.mkcolParents(ctx, rel)
		if err != nil {
			return err
		}
		err = w.put(ctx, rel, src, contentType)
		var se *WebDAVStatusError
		if err == nil || !errors.As(err, &se) || (se.StatusCode != http.StatusNotFound && se.StatusCode != http.StatusConflict) {
			return err
		}
		// The parent collection is missing.
		if attempt == 0 && w.forgetParents(rel) {
			continue
		}
		if mkcolErr != nil {
			return fmt.Errorf("%w (creating the parent collection: %v)", err, mkcolErr)
		}
		return err
	}
}

func (w *webdav) put(ctx context.Context, rel string, src *webdavBody, contentType string) error {
	ctx, cancel, progress := w.requestContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, w.url(rel, false), nil)
	if err != nil {
		return w.permanent(err)
	}
	req.Body = src.open(progress)
	req.GetBody = func() (io.ReadCloser, error) { return src.open(progress), nil }
	req.ContentLength = src.size
	if src.size == 0 {
		req.Body, req.GetBody = http.NoBody, nil
	} else {
		req.Header.Set("Expect", "100-continue")
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := w.do(ctx, req)
	if err != nil {
		return err
	}
	defer webdavDrain(resp)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return w.statusError(req, resp)
}

// mkcolParents makes sure each parent collection of rel exists, top down, skipping those already known.
// MKCOL answered 201 (created) or 405 (exists) makes a collection known. Another status is not an error
// yet (some servers refuse MKCOL on an existing collection with 403): it is returned as mkcolErr for the
// PUT's error, should the PUT fail too. Network errors and cancellation are returned as err.
func (w *webdav) mkcolParents(ctx context.Context, rel string) (mkcolErr, err error) {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		w.mu.Lock()
		known := w.collections[dir]
		w.mu.Unlock()
		if known {
			continue
		}
		status, err := w.mkcol(ctx, dir)
		if err != nil {
			return nil, err
		}
		switch status.StatusCode {
		case http.StatusCreated, http.StatusOK, http.StatusNoContent, http.StatusMethodNotAllowed:
			w.mu.Lock()
			w.collections[dir] = true
			w.mu.Unlock()
		default:
			if mkcolErr == nil {
				mkcolErr = status
			}
		}
	}
	return mkcolErr, nil
}

// mkcol sends one MKCOL and returns its status as a *WebDAVStatusError (also when it succeeded).
func (w *webdav) mkcol(ctx context.Context, dir string) (*WebDAVStatusError, error) {
	ctx, cancel, _ := w.requestContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "MKCOL", w.url(dir, true), http.NoBody)
	if err != nil {
		return nil, w.permanent(err)
	}
	resp, err := w.do(ctx, req)
	if err != nil {
		return nil, err
	}
	webdavDrain(resp)
	return &WebDAVStatusError{Target: w.name, Method: req.Method, URL: req.URL.Redacted(), StatusCode: resp.StatusCode, Status: resp.Status}, nil
}

// forgetParents drops rel's parents from the known collections and reports whether any was known.
func (w *webdav) forgetParents(rel string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	forgot := false
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if w.collections[dir] {
			delete(w.collections, dir)
			forgot = true
		}
	}
	return forgot
}

// Verify checks the stored file: its Content-Length (verify head; a server that sends none is read back
// instead) or its length and SHA-256 read back (verify readback; sha256 empty compares the length only).
func (w *webdav) Verify(ctx context.Context, name string, size int64, sha256 string) error {
	rel, err := w.rel(name)
	if err != nil {
		return err
	}
	if w.verify == VerifyHead {
		n, err := w.head(ctx, rel)
		if err != nil {
			return err
		}
		if n >= 0 {
			if n != size {
				return fmt.Errorf("%w: webdav target %q: %s holds %d bytes, sent %d", ErrMismatch, w.name, name, n, size)
			}
			return nil
		}
	}
	return w.readback(ctx, rel, name, size, sha256)
}

// head returns the file's Content-Length, or -1 when the server sent none.
func (w *webdav) head(ctx context.Context, rel string) (int64, error) {
	ctx, cancel, _ := w.requestContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, w.url(rel, false), http.NoBody)
	if err != nil {
		return 0, w.permanent(err)
	}
	resp, err := w.do(ctx, req)
	if err != nil {
		return 0, err
	}
	webdavDrain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, fmt.Errorf("%w: webdav target %q: %s is missing (HEAD %s: %s)", ErrMismatch, w.name, rel, w.url(rel, false), resp.Status)
	case resp.StatusCode/100 != 2:
		return 0, w.statusError(req, resp)
	case resp.Header.Get("Content-Length") == "":
		return -1, nil
	}
	n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return -1, nil
	}
	return n, nil
}

func (w *webdav) readback(ctx context.Context, rel, name string, size int64, wantSum string) error {
	ctx, cancel, progress := w.requestContext(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url(rel, false), http.NoBody)
	if err != nil {
		return w.permanent(err)
	}
	resp, err := w.do(ctx, req)
	if err != nil {
		return err
	}
	defer webdavDrain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: webdav target %q: %s is missing (GET %s: %s)", ErrMismatch, w.name, name, w.url(rel, false), resp.Status)
	case resp.StatusCode != http.StatusOK: // a 206 or 204 is not the whole file
		return w.statusError(req, resp)
	}
	h := sha256.New()
	// One byte more than expected tells a longer file from the right one without reading all of it.
	n, err := io.Copy(h, &webdavProgressReader{r: io.LimitReader(resp.Body, size+1), progress: progress})
	if err != nil {
		return w.transportError(ctx, req, err)
	}
	if n != size {
		if n > size {
			return fmt.Errorf("%w: webdav target %q: %s holds more than the %d bytes sent", ErrMismatch, w.name, name, size)
		}
		return fmt.Errorf("%w: webdav target %q: %s holds %d bytes, sent %d", ErrMismatch, w.name, name, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); wantSum != "" && !strings.EqualFold(got, wantSum) {
		return fmt.Errorf("%w: webdav target %q: %s has SHA-256 %s, sent %s", ErrMismatch, w.name, name, got, wantSum)
	}
	return nil
}

// rel is name under the prefix, checked to stay inside it.
func (w *webdav) rel(name string) (string, error) {
	if !validObjectPath(name) || path.Clean(name) != name {
		return "", &Permanent{Err: fmt.Errorf("delivery: webdav target %q: object name %q: must be a clean relative path", w.name, name)}
	}
	if w.prefix == "" {
		return name, nil
	}
	return w.prefix + "/" + name, nil
}

// url is rel's address under the base URL, escaped; collections end in '/'.
func (w *webdav) url(rel string, collection bool) string {
	segs := strings.Split(rel, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	u := *w.base
	u.Path, u.RawPath = w.base.Path+rel, w.base.EscapedPath()+strings.Join(segs, "/")
	if collection {
		u.Path, u.RawPath = u.Path+"/", u.RawPath+"/"
	}
	return u.String()
}

// requestContext bounds one request by the target's timeout, restarted whenever progress is called (a
// body chunk sent or received).
func (w *webdav) requestContext(parent context.Context) (context.Context, context.CancelFunc, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	timer := time.AfterFunc(w.timeout, func() { cancel(errWebDAVSilence) })
	return ctx, func() { timer.Stop(); cancel(context.Canceled) }, func() { timer.Reset(w.timeout) }
}

var errWebDAVSilence = errors.New("timed out")

// do sends req; errors are transport errors (retryable unless the caller's context ended).
func (w *webdav) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, w.transportError(ctx, req, err)
	}
	return resp, nil
}

func (w *webdav) transportError(ctx context.Context, req *http.Request, err error) error {
	if errors.Is(context.Cause(ctx), errWebDAVSilence) {
		return fmt.Errorf("delivery: webdav target %q: %s %s: nothing sent or received for %v", w.name, req.Method, req.URL.Redacted(), w.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its URL is ours, printed below
	}
	return fmt.Errorf("delivery: webdav target %q: %s %s: %w", w.name, req.Method, req.URL.Redacted(), err)
}

// statusError classifies an unsuccessful status (see NewWebDAV).
func (w *webdav) statusError(req *http.Request, resp *http.Response) error {
	se := &WebDAVStatusError{Target: w.name, Method: req.Method, URL: req.URL.Redacted(), StatusCode: resp.StatusCode, Status: resp.Status}
	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		if loc, err := resp.Location(); err == nil {
			se.Location = loc.Redacted()
		}
		return &Permanent{Err: se}
	case code >= 400 && code < 500 && !webdavRetryable4xx[code]:
		return &Permanent{Err: se}
	}
	return se
}

func (w *webdav) permanent(err error) error {
	return &Permanent{Err: fmt.Errorf("delivery: webdav target %q: %w", w.name, err)}
}

// webdavDrain reads a little of what is left of a response body, so the connection can be reused, and closes it.
func webdavDrain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// webdavBody hands out readers of the first size bytes of rs, each from the start. The HTTP transport may
// ask for the body again (digest challenge, a connection that died before sending) while an earlier reader
// is still held: only the newest reader reads, the older ones fail.
type webdavBody struct {
	mu   sync.Mutex
	rs   io.ReadSeeker
	size int64
	pos  int64 // rs's offset, -1 unknown
	gen  int
}

func (b *webdavBody) open(progress func()) io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &webdavBodyReader{b: b, gen: b.gen, progress: progress}
}

var errWebDAVBodyReplaced = errors.New("request body superseded by a retry")

type webdavBodyReader struct {
	b        *webdavBody
	gen      int
	off      int64
	progress func()
}

func (r *webdavBodyReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != r.gen {
		return 0, errWebDAVBodyReplaced
	}
	if r.off >= b.size {
		return 0, io.EOF
	}
	if b.pos != r.off {
		if _, err := b.rs.Seek(r.off, io.SeekStart); err != nil {
			b.pos = -1
			return 0, err
		}
		b.pos = r.off
	}
	if rest := b.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rs.Read(p)
	r.off += int64(n)
	b.pos += int64(n)
	if n > 0 {
		r.progress()
	}
	if err == io.EOF && r.off < b.size {
		err = io.ErrUnexpectedEOF // the transport reports the short body against Content-Length
	}
	if err == nil && r.off >= b.size {
		err = io.EOF
	}
	return n, err
}

func (r *webdavBodyReader) Close() error { return nil }

type webdavProgressReader struct {
	r        io.Reader
	progress func()
}

func (r *webdavProgressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.progress()
	}
	return n, err
}

// webdavBasicAuth adds basic authentication to every request.
type webdavBasicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (a *webdavBasicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not modify its request; the body is shared, as it must be
	req.SetBasicAuth(a.user, a.password)
	return a.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (a *webdavBasicAuth) CloseIdleConnections() {
	if c, ok := a.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
