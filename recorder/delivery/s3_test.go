package delivery

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/siphook/siphook/recorder"
)

const s3Bucket = "recordings"

// s3Fake is gofakes3 with its in-memory backend behind an httptest server on loopback, with a fault
// injector in front and a record of the requests that reached the store.
type s3Fake struct {
	*httptest.Server
	backend *s3mem.Backend
	faults  *s3Faults
}

// newS3Fake starts a fake S3 with the bucket; backend shares the store with another fake when not nil.
func newS3Fake(t *testing.T, backend *s3mem.Backend) *s3Fake {
	t.Helper()
	if backend == nil {
		backend = s3mem.New()
		if err := backend.CreateBucket(s3Bucket); err != nil {
			t.Fatal(err)
		}
	}
	f := &s3Fake{backend: backend, faults: &s3Faults{next: gofakes3.New(backend).Server()}}
	f.Server = httptest.NewServer(f.faults)
	t.Cleanup(f.Close)
	return f
}

// target builds an S3 target on the fake (region set: no location lookup).
func (f *s3Fake) target(t *testing.T, cfg TargetConfig) Target {
	t.Helper()
	cfg.Type, cfg.Endpoint, cfg.Bucket, cfg.Insecure = TypeS3, strings.TrimPrefix(f.URL, "http://"), s3Bucket, true
	cfg.AccessKey, cfg.SecretKey, cfg.Region = "AKIDTEST", "test-secret-key", "us-east-1"
	if cfg.Name == "" {
		cfg.Name = "s3"
	}
	tg, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Name() != cfg.Name {
		t.Fatalf("Name() = %q", tg.Name())
	}
	return tg
}

// object reads key from the store.
func (f *s3Fake) object(t *testing.T, key string) ([]byte, map[string]string) {
	t.Helper()
	obj, err := f.backend.GetObject(s3Bucket, key, nil)
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	defer obj.Contents.Close()
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		t.Fatal(err)
	}
	return data, obj.Metadata
}

// keys lists the bucket.
func (f *s3Fake) keys(t *testing.T) []string {
	t.Helper()
	list, err := f.backend.ListBucket(s3Bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out
}

// s3Faults fails two in three of the next `left` requests, in turn with: a 500, a connection cut in the middle of the request
// body (or at once, without one), a PUT stored whose response is lost, a GET cut in the middle of the
// response body (other methods: 503). The rest pass; every request that reached the store is recorded.
type s3Faults struct {
	next http.Handler

	mu       sync.Mutex
	left     int      // requests of the faulty period still to come
	injected int      // faults injected
	reached  []string // "METHOD path" of requests passed to the store, in order
	headers  []http.Header
}

func (f *s3Faults) fail(n int) {
	f.mu.Lock()
	f.left = n
	f.mu.Unlock()
}

func (f *s3Faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	mode := -1
	if f.left > 0 {
		f.left--
		if f.left%3 != 0 { // one in three passes, so verifications and JSONs meet faults too
			mode = f.injected % 4
			f.injected++
		}
	}
	f.mu.Unlock()
	reach := func(w http.ResponseWriter) {
		f.mu.Lock()
		f.reached = append(f.reached, r.Method+" "+r.URL.Path)
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		f.next.ServeHTTP(w, r)
	}
	switch {
	case mode == -1:
		reach(w)
	case mode == 0 || (mode == 3 && r.Method != http.MethodGet):
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
	case mode == 1:
		if r.ContentLength > 0 {
			io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	case mode == 2 && r.Method == http.MethodPut:
		reach(&lostResponse{header: http.Header{}})
		panic(http.ErrAbortHandler) // stored, but the client never hears so
	case mode == 2:
		w.WriteHeader(http.StatusServiceUnavailable)
	case mode == 3: // GET
		reach(&cutResponse{ResponseWriter: w})
		panic(http.ErrAbortHandler)
	}
}

// lostResponse swallows a response.
type lostResponse struct{ header http.Header }

func (l *lostResponse) Header() http.Header         { return l.header }
func (l *lostResponse) Write(p []byte) (int, error) { return len(p), nil }
func (l *lostResponse) WriteHeader(int)             {}

// cutResponse passes the first half of the body (by Content-Length) and swallows the rest.
type cutResponse struct {
	http.ResponseWriter
	written int64
}

func (c *cutResponse) Write(p []byte) (int, error) {
	var length int64
	fmt.Sscan(c.Header().Get("Content-Length"), &length)
	keep := max(0, min(int64(len(p)), length/2-c.written))
	if keep > 0 {
		c.ResponseWriter.Write(p[:keep])
		c.written += keep
		c.ResponseWriter.(http.Flusher).Flush()
	}
	return len(p), nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestS3PutVerify: Put stores the content with its sha256 metadata under the prefix (path-style), with
// the SSE header asked for; both verifications pass on the stored object and catch a missing, changed or
// different one.
func TestS3PutVerify(t *testing.T) {
	cases := []TargetConfig{
		{Verify: VerifyHead},
		{Verify: VerifyReadback},
		{Prefix: "/site-1/archive/", PathStyle: true},
		{Prefix: "sse", SSE: "AES256"},
		{Prefix: "kms", SSE: "aws:kms", SSEKMSKeyID: "arn:aws:kms:us-east-1:1:key/k", Verify: VerifyReadback},
	}
	for _, cfg := range cases {
		t.Run(fmt.Sprintf("verify=%s,prefix=%s,sse=%s", cfg.Verify, cfg.Prefix, cfg.SSE), func(t *testing.T) {
			f := newS3Fake(t, nil)
			tg := f.target(t, cfg)
			data := randomBytes(t, 70_000)
			sum := hexSHA256(data)
			const name = "2026/11/21/r1.wav"
			if err := tg.Put(t.Context(), name, bytes.NewReader(data), int64(len(data)), sum, "audio/wav"); err != nil {
				t.Fatal(err)
			}
			key := path.Join(strings.Trim(cfg.Prefix, "/"), name)
			got, meta := f.object(t, key)
			if !bytes.Equal(got, data) {
				t.Fatal("stored content differs")
			}
			if meta["X-Amz-Meta-Sha256"] != sum {
				t.Errorf("sha256 metadata %q, want %s (all: %v)", meta["X-Amz-Meta-Sha256"], sum, meta)
			}
			if meta["Content-Type"] != "audio/wav" {
				t.Errorf("content type %q", meta["Content-Type"])
			}
			f.faults.mu.Lock()
			put := slices.IndexFunc(f.faults.reached, func(s string) bool { return strings.HasPrefix(s, "PUT ") })
			if want := "PUT /" + s3Bucket + "/" + key; f.faults.reached[put] != want {
				t.Errorf("request %q, want %q (path-style)", f.faults.reached[put], want)
			}
			if sse := f.faults.headers[put].Get("X-Amz-Server-Side-Encryption"); sse != cfg.SSE {
				t.Errorf("SSE header %q, want %q", sse, cfg.SSE)
			}
			if kms := f.faults.headers[put].Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); kms != cfg.SSEKMSKeyID {
				t.Errorf("KMS key header %q, want %q", kms, cfg.SSEKMSKeyID)
			}
			f.faults.mu.Unlock()

			if err := tg.Verify(t.Context(), name, int64(len(data)), sum); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := tg.Verify(t.Context(), name, int64(len(data)), hexSHA256([]byte("other"))); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify with another hash: %v, want ErrMismatch", err)
			}
			if err := tg.Verify(t.Context(), name, int64(len(data))+1, sum); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify with another size: %v, want ErrMismatch", err)
			}
			if err := tg.Verify(t.Context(), "2026/11/21/missing.wav", 1, sum); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify of a missing object: %v, want ErrMismatch", err)
			}
			// Changed behind our back, same size, metadata kept: only reading it back can tell.
			changed := bytes.Clone(data)
			changed[100] ^= 0xff
			if _, err := f.backend.PutObject(s3Bucket, key, meta, bytes.NewReader(changed), int64(len(changed)), nil); err != nil {
				t.Fatal(err)
			}
			err := tg.Verify(t.Context(), name, int64(len(data)), sum)
			if cfg.Verify == VerifyReadback && !errors.Is(err, ErrMismatch) {
				t.Errorf("readback of a changed object: %v, want ErrMismatch", err)
			}
			// Replaced by something that lost the metadata: head sees it too. (s3mem merges the metadata of
			// an object it replaces, so delete it first.)
			if _, err := f.backend.DeleteObject(s3Bucket, key); err != nil {
				t.Fatal(err)
			}
			stripped := maps.Clone(meta)
			delete(stripped, "X-Amz-Meta-Sha256")
			if _, err := f.backend.PutObject(s3Bucket, key, stripped, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				t.Fatal(err)
			}
			if err := tg.Verify(t.Context(), name, int64(len(data)), sum); cfg.Verify != VerifyReadback && !errors.Is(err, ErrMismatch) {
				t.Errorf("head of an object without sha256 metadata: %v, want ErrMismatch", err)
			}
		})
	}
}

// TestS3Errors: a missing bucket and server errors are retryable; a bad configuration is refused at once.
func TestS3Errors(t *testing.T) {
	f := newS3Fake(t, nil)
	cfg := TargetConfig{Name: "s3", Type: TypeS3, Endpoint: strings.TrimPrefix(f.URL, "http://"), Bucket: "no-such-bucket",
		Insecure: true, AccessKey: "a", SecretKey: "b", Region: "us-east-1", Timeout: 5 * time.Second}
	tg, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Put(t.Context(), "x.json", bytes.NewReader([]byte("{}")), 2, hexSHA256([]byte("{}")), "application/json")
	var perm *Permanent
	if err == nil || errors.As(err, &perm) || errors.Is(err, ErrMismatch) {
		t.Errorf("put to a missing bucket: %v, want a retryable error", err)
	}
	f.faults.fail(2) // the first is a 500, the second passes
	ok := f.target(t, TargetConfig{})
	if err := ok.Put(t.Context(), "x.json", bytes.NewReader([]byte("{}")), 2, hexSHA256([]byte("{}")), "application/json"); err == nil ||
		errors.As(err, &perm) || !strings.Contains(err.Error(), "injected") {
		t.Errorf("put answered 500: %v, want a retryable error saying why", err)
	}

	for _, bad := range []TargetConfig{
		{Name: "s3", Type: TypeWebDAV, URL: "http://x/"},
		{Name: "s3", Type: TypeS3, Endpoint: "http://minio:9000", Bucket: "b"},
		{Name: "s3", Type: TypeS3, Endpoint: "minio:9000"},
		{Name: "s3", Type: TypeS3, Endpoint: "minio:9000", Bucket: "b", SSE: "rot13"},
		{Name: "s3", Type: TypeS3, Endpoint: "minio:9000", Bucket: "b", AccessKey: "only-half"},
		{Name: "s3", Type: TypeS3, Endpoint: "minio:9000", Bucket: "b", CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := NewS3(bad); err == nil {
			t.Errorf("NewS3(%v) accepted", bad)
		}
	}
}

// TestS3FaultStory: two S3 targets (head and readback verification) misbehave for a while during a queue
// run of 20 recordings (500s, 503s, connections cut in the middle of request and response bodies, stored
// objects whose response is lost), then recover. Every file arrives exactly once per target, intact, the
// WAV before its JSON, and the metrics tell the story.
func TestS3FaultStory(t *testing.T) {
	const n = 20
	dir := t.TempDir()
	var recs []qRecording
	for i := range n {
		state := recorder.StateCompleted
		size := 20_000 + i*3_000
		if i%7 == 6 {
			state, size = recorder.StateNeverActivated, 0 // no audio: the JSON alone
		}
		recs = append(recs, writeQRecording(t, dir, fmt.Sprintf("rec-%02d", i), size, state))
	}
	head := newS3Fake(t, nil)
	readback := newS3Fake(t, head.backend) // the same store, another door with its own faults
	head.faults.fail(150)
	readback.faults.fail(150)
	targets := []Target{
		head.target(t, TargetConfig{Name: "head", Prefix: "h", Verify: VerifyHead, Timeout: 10 * time.Second}),
		readback.target(t, TargetConfig{Name: "readback", Prefix: "r", Verify: VerifyReadback, PathStyle: true, Timeout: 10 * time.Second}),
	}
	cfg := qConfig()
	cfg.FastAttempts = 3
	cfg.MinBackoff, cfg.MaxBackoff = 2*time.Millisecond, 20*time.Millisecond
	cfg.RetryInterval = 50 * time.Millisecond
	e := newQEnv(t, cfg, dir, targets)
	e.Delivery.tick = nil // the real retry ticker
	for _, r := range recs {
		if err := e.Enqueue(r.docRel, r.doc); err != nil {
			t.Fatal(err)
		}
	}
	e.run()
	waitUntil(t, "the faults are used up", func() bool {
		head.faults.mu.Lock()
		defer head.faults.mu.Unlock()
		readback.faults.mu.Lock()
		defer readback.faults.mu.Unlock()
		return head.faults.left == 0 && readback.faults.left == 0
	})
	waitUntil(t, "everything is delivered", func() bool { return e.Pending() == 0 })

	keys := head.keys(t)
	for _, c := range []struct {
		label, prefix string
		f             *s3Fake
	}{{"head", "h", head}, {"readback", "r", readback}} {
		if got := e.metric(t, "siphook_delivery_failures_total", c.label); got == 0 {
			t.Errorf("%s: no failures counted", c.label)
		}
		if got := e.metric(t, "siphook_delivery_delivered_total", c.label); got != n {
			t.Errorf("%s: delivered_total = %v, want %d", c.label, got, n)
		}
		for _, g := range []string{"queued", "retry_buffer", "stuck"} {
			if got := e.metric(t, "siphook_delivery_"+g, c.label); got != 0 {
				t.Errorf("%s: %s = %v, want 0", c.label, g, got)
			}
		}
		var want []string
		var wantBytes int
		for _, r := range recs {
			files := map[string][]byte{r.docRel: r.json}
			if r.wav != nil {
				files[r.doc.Audio.File] = r.wav
			}
			for name, local := range files {
				key := c.prefix + "/" + name
				want = append(want, key)
				wantBytes += len(local)
				got, _ := c.f.object(t, key)
				if hexSHA256(got) != hexSHA256(local) {
					t.Errorf("%s: %s differs from the local file", c.label, key)
				}
			}
			// The JSON reached the store only after the WAV.
			if r.wav != nil {
				c.f.faults.mu.Lock()
				wav := slices.Index(c.f.faults.reached, "PUT /"+s3Bucket+"/"+c.prefix+"/"+r.doc.Audio.File)
				doc := slices.Index(c.f.faults.reached, "PUT /"+s3Bucket+"/"+c.prefix+"/"+r.docRel)
				c.f.faults.mu.Unlock()
				if wav < 0 || doc < wav {
					t.Errorf("%s: %s: JSON stored at request %d, WAV at %d", c.label, r.doc.RecordingID, doc, wav)
				}
			}
		}
		var got []string
		for _, k := range keys {
			if strings.HasPrefix(k, c.prefix+"/") {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: objects\n got %v\nwant %v", c.label, got, want)
		}
		if b := e.metric(t, "siphook_delivery_bytes_total", c.label); b < float64(wantBytes) {
			t.Errorf("%s: bytes_total = %v, want at least %d", c.label, b, wantBytes)
		}
	}
	if files := queueFiles(t, dir); len(files) != 0 {
		t.Errorf("job files left: %v", files)
	}
}
