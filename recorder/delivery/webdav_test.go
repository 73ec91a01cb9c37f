package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/apachetest"
)

// webdavFile is content to upload with its size and hex SHA-256.
type webdavFile struct {
	data []byte
	sum  string
}

func newWebDAVFile(t *testing.T, n int) webdavFile {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return webdavFileOf(data)
}

func webdavFileOf(data []byte) webdavFile {
	sum := sha256.Sum256(data)
	return webdavFile{data: data, sum: hex.EncodeToString(sum[:])}
}

func (f webdavFile) put(ctx context.Context, tg Target, name string) error {
	return tg.Put(ctx, name, bytes.NewReader(f.data), int64(len(f.data)), f.sum, "audio/wav")
}

func newWebDAVTarget(t *testing.T, cfg TargetConfig, opts ...WebDAVOption) Target {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "dav"
	}
	cfg.Type = TypeWebDAV
	tg, err := NewWebDAV(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Name() != cfg.Name {
		t.Fatalf("Name() = %q, want %q", tg.Name(), cfg.Name)
	}
	// Registered after the server's cleanup, so run before it: no client connection outlives the test.
	t.Cleanup(tg.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	return tg
}

func webdavIsPermanent(err error) bool {
	var p *Permanent
	return errors.As(err, &p)
}

// TestWebDAVApache uploads to a real Apache mod_dav without authentication, with basic and with digest:
// nested collections under a prefix, idempotent re-uploads, concurrent uploads into a new day, and both
// verifications catching a file changed on the server.
func TestWebDAVApache(t *testing.T) {
	for _, auth := range []string{"", "basic", "digest"} {
		name := auth
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			srv := apachetest.Start(t, apachetest.Options{Auth: auth})
			cfg := TargetConfig{URL: strings.TrimSuffix(srv.URL(), "/"), Prefix: "/site-1/archive/"} // no trailing slash: added
			if auth != "" {
				cfg.Username, cfg.Password = srv.Options().User, srv.Options().Password
				if auth == "digest" {
					cfg.Auth = "digest"
				} // basic: the default with a username
			}
			ctx := context.Background()
			head := newWebDAVTarget(t, cfg)
			cfg.Verify = VerifyReadback
			readback := newWebDAVTarget(t, cfg)

			wav, doc := newWebDAVFile(t, 1<<20+17), webdavFileOf([]byte(`{"id":"abc"}`))
			const wavName, docName = "2024/05/01/abc.wav", "2024/05/01/abc.json"
			onDisk := func(name string) string {
				return filepath.Join(srv.Root(), "site-1", "archive", filepath.FromSlash(name))
			}

			if err := wav.put(ctx, head, wavName); err != nil {
				t.Fatalf("Put: %v", err)
			}
			// The body handed over need not be at its start.
			r := bytes.NewReader(doc.data)
			_, _ = r.Seek(5, io.SeekStart)
			if err := head.Put(ctx, docName, r, int64(len(doc.data)), doc.sum, "application/json"); err != nil {
				t.Fatalf("Put json: %v", err)
			}
			for _, f := range []struct {
				name string
				file webdavFile
			}{{wavName, wav}, {docName, doc}} {
				if got, err := os.ReadFile(onDisk(f.name)); err != nil || !bytes.Equal(got, f.file.data) {
					t.Fatalf("%s on the server: %d bytes, %v; want the %d bytes sent", f.name, len(got), err, len(f.file.data))
				}
				for _, tg := range []Target{head, readback} {
					if err := tg.Verify(ctx, f.name, int64(len(f.file.data)), f.file.sum); err != nil {
						t.Fatalf("Verify %s: %v", f.name, err)
					}
				}
			}

			// Idempotent: again, from a target that knows no collections yet, and from the one that does.
			for _, tg := range []Target{readback, head} {
				if err := wav.put(ctx, tg, wavName); err != nil {
					t.Fatalf("Put again: %v", err)
				}
				if err := tg.Verify(ctx, wavName, int64(len(wav.data)), wav.sum); err != nil {
					t.Fatalf("Verify after Put again: %v", err)
				}
			}

			// Several workers into a day no one has created yet.
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					f := webdavFileOf([]byte(fmt.Sprintf("file %d", i)))
					n := fmt.Sprintf("2024/06/0%d/f%d.json", i%2+1, i)
					if errs[i] = f.put(ctx, head, n); errs[i] == nil {
						errs[i] = readback.Verify(ctx, n, int64(len(f.data)), f.sum)
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent Puts: %v", err)
			}

			// Changed on the server, same length: only reading it back tells.
			changed := bytes.Clone(wav.data)
			changed[len(changed)/2] ^= 0xff
			if err := os.WriteFile(onDisk(wavName), changed, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := head.Verify(ctx, wavName, int64(len(wav.data)), wav.sum); err != nil {
				t.Fatalf("Verify head of a same-size change: %v (HEAD sees only the size)", err)
			}
			if err := readback.Verify(ctx, wavName, int64(len(wav.data)), wav.sum); !errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify readback of a changed file: %v, want ErrMismatch", err)
			}
			// Truncated, longer, missing: both tell.
			for _, content := range [][]byte{wav.data[:1000], append(bytes.Clone(wav.data), 0), nil} {
				if content == nil {
					if err := os.Remove(onDisk(wavName)); err != nil {
						t.Fatal(err)
					}
				} else if err := os.WriteFile(onDisk(wavName), content, 0o644); err != nil {
					t.Fatal(err)
				}
				for _, tg := range []Target{head, readback} {
					if err := tg.Verify(ctx, wavName, int64(len(wav.data)), wav.sum); !errors.Is(err, ErrMismatch) || webdavIsPermanent(err) {
						t.Fatalf("Verify of a file of %d bytes (nil: missing): %v, want ErrMismatch", len(content), err)
					}
				}
			}
			// Putting it again repairs it.
			if err := wav.put(ctx, head, wavName); err != nil {
				t.Fatal(err)
			}
			if err := readback.Verify(ctx, wavName, int64(len(wav.data)), wav.sum); err != nil {
				t.Fatalf("Verify after repair: %v", err)
			}
		})
	}
}

// TestWebDAVApacheWrongPassword: a 401 is an error to retry (the password gets fixed in the config), not
// *Permanent, and no error shows the password.
func TestWebDAVApacheWrongPassword(t *testing.T) {
	for _, auth := range []string{"basic", "digest"} {
		t.Run(auth, func(t *testing.T) {
			srv := apachetest.Start(t, apachetest.Options{Auth: auth})
			const wrong = "Wr0ng-Secret-Pa55"
			for _, password := range []string{wrong, ""} {
				tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL(), Username: srv.Options().User, Password: password, Auth: auth})
				f := webdavFileOf([]byte("audio"))
				err := f.put(context.Background(), tg, "2024/05/01/x.wav")
				var se *WebDAVStatusError
				if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
					t.Fatalf("Put with a wrong password: %v, want a 401 *WebDAVStatusError", err)
				}
				if webdavIsPermanent(err) {
					t.Fatalf("Put with a wrong password: %v is *Permanent", err)
				}
				verr := tg.Verify(context.Background(), "2024/05/01/x.wav", 5, f.sum)
				if verr == nil || webdavIsPermanent(verr) || errors.Is(verr, ErrMismatch) {
					t.Fatalf("Verify with a wrong password: %v, want a retryable error", verr)
				}
				for _, e := range []error{err, verr} {
					if msg := e.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, srv.Options().Password) {
						t.Fatalf("error shows a password: %s", msg)
					}
				}
			}
		})
	}
}

// TestWebDAVApacheStopped: an archive that went away is a retryable error; once it is back, Put works,
// even after its collections were removed behind the target's back.
func TestWebDAVApacheStopped(t *testing.T) {
	srv := apachetest.Start(t, apachetest.Options{Auth: "digest"})
	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL(), Username: srv.Options().User, Password: srv.Options().Password, Auth: "digest", Timeout: 10 * time.Second})
	ctx := context.Background()
	f := newWebDAVFile(t, 4096)
	if err := f.put(ctx, tg, "2024/05/01/a.wav"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	err := f.put(ctx, tg, "2024/05/01/b.wav")
	if err == nil || webdavIsPermanent(err) {
		t.Fatalf("Put to a stopped server: %v, want a retryable error", err)
	}
	if err := tg.Verify(ctx, "2024/05/01/a.wav", 4096, f.sum); err == nil || webdavIsPermanent(err) || errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify on a stopped server: %v, want a retryable error", err)
	}
	t.Logf("while stopped: %v", err)

	srv.Restart()
	if err := f.put(ctx, tg, "2024/05/01/b.wav"); err != nil {
		t.Fatalf("Put after Restart: %v", err)
	}
	if err := tg.Verify(ctx, "2024/05/01/b.wav", 4096, f.sum); err != nil {
		t.Fatal(err)
	}

	// Someone moved the day away: the collections the target knows are gone.
	if err := os.RemoveAll(filepath.Join(srv.Root(), "2024")); err != nil {
		t.Fatal(err)
	}
	if err := f.put(ctx, tg, "2024/05/01/c.wav"); err != nil {
		t.Fatalf("Put after the collections were removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.Root(), "2024", "05", "01", "c.wav")); err != nil {
		t.Fatal(err)
	}
}

// webdavFake is a minimal in-memory WebDAV server: MKCOL, PUT, HEAD, GET, with a hook to answer first.
type webdavFake struct {
	mu    sync.Mutex
	files map[string][]byte
	cols  map[string]bool
	hook  func(w http.ResponseWriter, r *http.Request) bool // true: answered
	seen  []string                                          // "METHOD path"
}

func newWebDAVFake() *webdavFake {
	return &webdavFake{files: map[string][]byte{}, cols: map[string]bool{"/": true, "/dav": true}}
}

func (f *webdavFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.Path)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case "MKCOL":
		switch {
		case f.cols[p] || f.files[p] != nil:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case !f.cols[path.Dir(p)]:
			w.WriteHeader(http.StatusConflict)
		default:
			f.cols[p] = true
			w.WriteHeader(http.StatusCreated)
		}
	case http.MethodPut:
		if !f.cols[path.Dir(p)] {
			w.WriteHeader(http.StatusConflict)
			return
		}
		if r.ContentLength < 0 {
			w.WriteHeader(http.StatusLengthRequired)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.files[p] = body
		w.WriteHeader(http.StatusCreated)
	case http.MethodHead, http.MethodGet:
		body, ok := f.files[p]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *webdavFake) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// TestWebDAVTLS: https works with ca_file naming the server's certificate (or insecure_skip_verify), and
// fails without.
func TestWebDAVTLS(t *testing.T) {
	fake := newWebDAVFake()
	srv := httptest.NewTLSServer(fake)
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newWebDAVFile(t, 70000)

	for _, cfg := range []TargetConfig{
		{URL: srv.URL + "/dav/", CAFile: caFile, Verify: VerifyReadback, Prefix: "p"},
		{URL: srv.URL + "/dav/", InsecureSkipVerify: true, Prefix: "q"},
	} {
		tg := newWebDAVTarget(t, cfg)
		if err := f.put(ctx, tg, "2024/05/01/t.wav"); err != nil {
			t.Fatalf("Put over TLS (%+v): %v", cfg, err)
		}
		if err := tg.Verify(ctx, "2024/05/01/t.wav", int64(len(f.data)), f.sum); err != nil {
			t.Fatalf("Verify over TLS: %v", err)
		}
		fake.mu.Lock()
		got := fake.files["/dav/"+cfg.Prefix+"/2024/05/01/t.wav"]
		fake.mu.Unlock()
		if !bytes.Equal(got, f.data) {
			t.Fatalf("server holds %d bytes, want %d", len(got), len(f.data))
		}
	}

	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/"})
	err := f.put(ctx, tg, "2024/05/01/u.wav")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Put without ca_file: %v, want a certificate error", err)
	}
	if webdavIsPermanent(err) {
		t.Fatalf("certificate error is *Permanent: %v", err)
	}

	// A ca_file without a certificate, or missing, is a configuration error.
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{empty, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := NewWebDAV(TargetConfig{Name: "dav", Type: TypeWebDAV, URL: srv.URL + "/dav/", CAFile: file}); err == nil {
			t.Fatalf("NewWebDAV with ca_file %s: no error", file)
		}
	}
}

// TestWebDAVStatuses: which answers are *Permanent, which retryable; redirects are not followed.
func TestWebDAVStatuses(t *testing.T) {
	fake := newWebDAVFake()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/"})
	ctx := context.Background()
	f := webdavFileOf([]byte("x"))

	for code, permanent := range map[int]bool{
		400: true, 405: true, 411: true, 413: true, 415: true, 301: true, 302: true, 307: true,
		401: false, 403: false, 404: false, 408: false, 409: false, 423: false, 429: false,
		500: false, 502: false, 503: false, 507: false,
	} {
		fake.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut && r.Method != http.MethodHead {
				return false
			}
			if code/100 == 3 {
				w.Header().Set("Location", srv.URL+"/elsewhere/")
			}
			w.WriteHeader(code)
			return true
		})
		err := f.put(ctx, tg, "a/b.wav")
		var se *WebDAVStatusError
		if !errors.As(err, &se) || se.StatusCode != code {
			t.Fatalf("PUT answered %d: %v, want a *WebDAVStatusError with %d", code, err, code)
		}
		if webdavIsPermanent(err) != permanent {
			t.Errorf("PUT answered %d: permanent %v, want %v (%v)", code, webdavIsPermanent(err), permanent, err)
		}
		if code == 404 {
			continue // Verify: missing, ErrMismatch
		}
		err = tg.Verify(ctx, "a/b.wav", 1, f.sum)
		if !errors.As(err, &se) || se.StatusCode != code || webdavIsPermanent(err) != permanent {
			t.Errorf("HEAD answered %d: %v, want a *WebDAVStatusError, permanent %v", code, err, permanent)
		}
	}
	fake.mu.Lock()
	for _, s := range fake.seen {
		if strings.Contains(s, "elsewhere") {
			t.Errorf("a redirect was followed: %s", s)
		}
	}
	fake.mu.Unlock()

	// MKCOL refused with 403 on a collection that exists (some servers do): the PUT goes ahead.
	fake.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "MKCOL" {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	})
	fake.mu.Lock()
	fake.cols["/dav/exists"] = true
	fake.mu.Unlock()
	if err := f.put(ctx, tg, "exists/c.wav"); err != nil {
		t.Fatalf("Put with MKCOL refused on an existing collection: %v", err)
	}
	// And when the collection is really missing, the PUT's error tells about the MKCOL too.
	err := f.put(ctx, tg, "missing/c.wav")
	if err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Put with MKCOL refused and no collection: %v, want the 409 and the 403", err)
	}
}

// TestWebDAVTimeout: a server that stops answering is given up on after the timeout (retryable); an upload
// that keeps moving is not, however long it takes in all.
func TestWebDAVTimeout(t *testing.T) {
	fake := newWebDAVFake()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
	fake.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodHead {
			return false
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})

	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/", Timeout: 200 * time.Millisecond})
	err := tg.Verify(context.Background(), "a.wav", 1, "")
	if err == nil || webdavIsPermanent(err) || !strings.Contains(err.Error(), "nothing sent or received") {
		t.Fatalf("Verify against a hung server: %v, want a retryable timeout", err)
	}

	// The caller's cancellation is its own error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Verify(ctx, "a.wav", 1, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context: %v, want context.Canceled", err)
	}

	// 40 chunks 25 ms apart: about a second in all, five times the timeout, but never silent for long.
	tg = newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/", Timeout: 500 * time.Millisecond})
	data := bytes.Repeat([]byte("0123456789abcdef"), 40*1024)
	body := &webdavSlowReader{r: bytes.NewReader(data), chunk: 16 * 1024, pause: 25 * time.Millisecond}
	if err := tg.Put(context.Background(), "slow.wav", body, int64(len(data)), "", ""); err != nil {
		t.Fatalf("slow but steady Put: %v", err)
	}
	fake.mu.Lock()
	got := fake.files["/dav/slow.wav"]
	fake.mu.Unlock()
	if !bytes.Equal(got, data) {
		t.Fatalf("server holds %d bytes, want %d", len(got), len(data))
	}
}

type webdavSlowReader struct {
	r     *bytes.Reader
	chunk int
	pause time.Duration
}

func (s *webdavSlowReader) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	if len(p) > s.chunk {
		p = p[:s.chunk]
	}
	return s.r.Read(p)
}

func (s *webdavSlowReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

// TestWebDAVBody: the body sent is exactly size bytes from the start, whatever the reader holds beyond;
// a shorter one fails.
func TestWebDAVBody(t *testing.T) {
	fake := newWebDAVFake()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/", Verify: VerifyReadback})
	ctx := context.Background()

	data := []byte("0123456789")
	if err := tg.Put(ctx, "ten.wav", bytes.NewReader(append(bytes.Clone(data), "growing"...)), 10, "", ""); err != nil {
		t.Fatal(err)
	}
	f := webdavFileOf(data)
	if err := tg.Verify(ctx, "ten.wav", 10, f.sum); err != nil {
		t.Fatal(err)
	}
	if err := tg.Verify(ctx, "ten.wav", 10, strings.ToUpper(f.sum)); err != nil {
		t.Fatalf("upper-case hex: %v", err)
	}
	if err := tg.Put(ctx, "short.wav", bytes.NewReader(data), 11, "", ""); err == nil || webdavIsPermanent(err) {
		t.Fatalf("Put of a body shorter than size: %v, want a retryable error", err)
	}
	if err := tg.Put(ctx, "empty.wav", bytes.NewReader(nil), 0, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := tg.Verify(ctx, "empty.wav", 0, webdavFileOf(nil).sum); err != nil {
		t.Fatal(err)
	}

	// Names must stay inside the target.
	for _, name := range []string{"", "/abs.wav", "../up.wav", "a/../../b.wav", "a//b.wav", "./a.wav", "a/./b.wav", "a\\b.wav"} {
		err := tg.Put(ctx, name, bytes.NewReader(data), 10, "", "")
		if !webdavIsPermanent(err) {
			t.Errorf("Put %q: %v, want *Permanent", name, err)
		}
	}
	// Odd characters are escaped.
	if err := tg.Put(ctx, "a b/c%d?#.wav", bytes.NewReader(data), 10, "", ""); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	_, ok := fake.files["/dav/a b/c%d?#.wav"]
	fake.mu.Unlock()
	if !ok {
		t.Fatalf("escaped name not stored as given; server saw %v", fake.seen)
	}
}

func TestWebDAVConfigErrors(t *testing.T) {
	const secret = "Sup3r-Secret"
	for _, cfg := range []TargetConfig{
		{URL: ""},
		{URL: "ftp://host/dav/"},
		{URL: "https:///dav/"},
		{URL: "https://user:" + secret + "@host/dav/"},
		{URL: "https://host/dav/", Auth: "basic"},
		{URL: "https://host/dav/", Auth: "digest", Password: secret},
		{URL: "https://host/dav/", Auth: "ntlm", Username: "u", Password: secret},
		{URL: "https://host/dav/", Verify: "md5"},
		{URL: "https://host/dav/", Prefix: "a/../b"},
		{URL: "https://host/dav/", Timeout: -time.Second},
	} {
		cfg.Name, cfg.Type = "dav", TypeWebDAV
		_, err := NewWebDAV(cfg)
		if err == nil {
			t.Errorf("NewWebDAV(%v): no error", cfg)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("NewWebDAV error shows the secret: %v", err)
		}
	}
}

// TestWebDAVDigestStale: a digest challenge that goes stale in the middle of an upload (the server read part
// of the body, then asked again) makes the transport send the body again, whole and from its start.
func TestWebDAVDigestStale(t *testing.T) {
	fake := newWebDAVFake()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	const password = "digest-Pa55"
	var (
		mu        sync.Mutex
		staleOnce bool
		probes    int // PUTs without a body
		auths     []string
	)
	fake.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		auth := r.Header.Get("Authorization")
		if r.Method == http.MethodPut && r.ContentLength == 0 {
			probes++
		}
		challenge := func(stale bool) bool {
			h := `Digest realm="fake", nonce="` + fmt.Sprint(len(auths)) + `", qop="auth", algorithm=MD5`
			if stale {
				h += ", stale=true"
			}
			w.Header().Set("WWW-Authenticate", h)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if !strings.HasPrefix(auth, "Digest ") || !strings.Contains(auth, `username="u"`) {
			return challenge(false)
		}
		auths = append(auths, auth)
		if staleOnce && r.Method == http.MethodPut {
			staleOnce = false
			// Part of the body has been sent (Go's server drains the rest, under 256 KiB, and keeps the
			// connection; one that closed it would make the PUT fail with a write error, to be retried).
			_, _ = io.CopyN(io.Discard, r.Body, 1000)
			return challenge(true)
		}
		return false
	})
	tg := newWebDAVTarget(t, TargetConfig{URL: srv.URL + "/dav/", Username: "u", Password: password, Auth: "digest", Verify: VerifyReadback})
	ctx := context.Background()
	f := newWebDAVFile(t, 200000)

	// No challenge yet: a bodyless probe fetches one first.
	if err := f.put(ctx, tg, "first.wav"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if probes != 1 {
		t.Errorf("%d bodyless probes, want 1", probes)
	}
	staleOnce = true
	mu.Unlock()
	if err := f.put(ctx, tg, "second.wav"); err != nil {
		t.Fatalf("Put through a stale challenge: %v", err)
	}
	if err := tg.Verify(ctx, "second.wav", int64(len(f.data)), f.sum); err != nil {
		t.Fatalf("Verify after a stale challenge: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if staleOnce {
		t.Fatal("the stale challenge was never sent")
	}
	for _, a := range auths {
		if strings.Contains(a, password) {
			t.Fatalf("the password was sent: %s", a)
		}
	}
}
