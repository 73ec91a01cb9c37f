package delivery

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/apachetest"
	"github.com/siphook/siphook/recorder"
)

// TestWebDAVFaultStory: a queue run of a dozen recordings of a few MB each to a real Apache mod_dav behind
// digest authentication, uploads throttled so they take a while. While the first WAV is half sent, Apache
// is killed (SIGKILL: it goes away mid-upload) and stays down until the jobs have been through their fast
// attempts and a retry-buffer run; then it comes back. Every file ends up on the server once, under its own
// name, intact, and the queue is empty.
func TestWebDAVFaultStory(t *testing.T) {
	const (
		n      = 12
		prefix = "site-1"
	)
	srv := apachetest.Start(t, apachetest.Options{Auth: "digest"})

	dir := t.TempDir()
	var recs []qRecording
	for i := range n {
		size := 1<<20 + i*(2<<20)/(n-1) // 1 MiB to 3 MiB
		recs = append(recs, writeQRecording(t, dir, fmt.Sprintf("rec-%02d", i), size, recorder.StateCompleted))
	}

	tr := newDAVFaultTransport(32<<10, 3*time.Millisecond)
	defer tr.release() // never leave an upload blocked, whatever happens below
	tg := newWebDAVTarget(t, TargetConfig{
		Name: "dav", URL: srv.URL(), Username: srv.Options().User, Password: srv.Options().Password, Auth: "digest",
		Prefix: prefix, Verify: VerifyReadback, Timeout: 10 * time.Second,
	}, WithWebDAVTransport(tr))

	cfg := qConfig()
	cfg.FastAttempts = 3
	cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 40*time.Millisecond
	cfg.RetryInterval = 100 * time.Millisecond
	e := newQEnv(t, cfg, dir, []Target{tg})
	e.Delivery.tick = nil // the real retry ticker
	for _, r := range recs {
		if err := e.Enqueue(r.docRel, r.doc); err != nil {
			t.Fatal(err)
		}
	}
	e.run()

	// The first PUT body to get half way is held there while the server is killed.
	var first *davFaultBody
	select {
	case first = <-tr.half:
	case <-time.After(30 * time.Second):
		t.Fatal("no PUT body got half way")
	}
	srv.Stop()
	// mod_dav_fs writes a PUT to a temporary file (.davfs.tmp*) that it renames into place when the body is
	// complete; killed, it leaves that file behind. Those are the only files the outage may leave: nothing
	// under a recording's name, and nothing at all after the restart.
	leftovers := davFiles(t, srv.Root())
	tr.release()
	for _, f := range leftovers {
		if !strings.HasPrefix(path.Base(f), ".davfs.tmp") {
			t.Errorf("the killed server left %s, not one of its temporary files", f)
		}
	}
	t.Logf("killed Apache with %s at %d of %d bytes; files on the server then: %v", first.name, first.read.Load(), first.size, leftovers)

	// Down long enough for the jobs to use up their fast attempts and for a retry-buffer run to fail too.
	waitUntil(t, "a retry-buffer run fails while the server is down", func() bool {
		return len(e.logs.records(slog.LevelWarn, "delivery: retry buffer run")) > 0
	})
	failuresDown := e.metric(t, "siphook_delivery_failures_total", "dav")
	srv.Restart()

	waitUntil(t, "everything is delivered", func() bool { return e.Pending() == 0 })

	// The kill really cut an upload short: the held body was interrupted, its PUT failed with part of it sent.
	if !first.interrupted.Load() {
		t.Errorf("the PUT of %s held at half way was not interrupted (its round trip: %v)", first.name, first.err())
	}
	if cut := tr.interruptedPuts(); len(cut) == 0 {
		t.Error("no PUT failed with part of its body sent")
	} else {
		t.Logf("PUTs cut mid-body: %v", cut)
	}

	// Every file once under its own name; besides them only the killed server's leftovers seen above.
	want := map[string][]byte{}
	wantBytes := 0
	for _, r := range recs {
		want[prefix+"/"+r.doc.Audio.File] = r.wav
		want[prefix+"/"+r.docRel] = r.json
		wantBytes += len(r.wav) + len(r.json)
	}
	wantNames := slices.Sorted(maps.Keys(want))
	wantNames = append(wantNames, leftovers...)
	slices.Sort(wantNames)
	if got := davFiles(t, srv.Root()); !slices.Equal(got, wantNames) {
		t.Errorf("files on the server:\n got %v\nwant %v", got, wantNames)
	}
	for name, local := range want {
		stored, err := os.ReadFile(filepath.Join(srv.Root(), filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if hexSHA256(stored) != hexSHA256(local) {
			t.Errorf("%s: SHA-256 %s (%d bytes), local file %s (%d bytes)", name, hexSHA256(stored), len(stored), hexSHA256(local), len(local))
		}
	}

	if got := e.metric(t, "siphook_delivery_delivered_total", "dav"); got != n {
		t.Errorf("delivered_total = %v, want %d", got, n)
	}
	if failuresDown == 0 {
		t.Error("no failures counted while the server was down")
	}
	for _, g := range []string{"queued", "retry_buffer", "stuck"} {
		if got := e.metric(t, "siphook_delivery_"+g, "dav"); got != 0 {
			t.Errorf("%s = %v, want 0", g, got)
		}
	}
	if b := e.metric(t, "siphook_delivery_bytes_total", "dav"); b < float64(wantBytes) {
		t.Errorf("bytes_total = %v, want at least %d", b, wantBytes)
	}
	if files := queueFiles(t, dir); len(files) != 0 {
		t.Errorf("job files left: %v", files)
	}
	if t.Failed() {
		t.Logf("log:\n%s\nApache error log:\n%s", e.logs.String(), srv.ErrorLog())
	}
}

// davFiles lists everything but directories under root, as sorted slash paths relative to it.
func davFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// davFaultTransport is an http.Transport whose PUT bodies trickle (a pause before each chunk). The first
// body to get half way is handed to half and then held until release, so the test can kill the server
// in the middle of it. It records the PUTs that failed with part of their body sent.
type davFaultTransport struct {
	next  *http.Transport
	chunk int
	pause time.Duration

	half      chan *davFaultBody // the first body half sent (buffered, one)
	halfOnce  sync.Once
	released  chan struct{}
	closeOnce sync.Once

	mu  sync.Mutex
	cut []string // "name: read of size: error"
}

func newDAVFaultTransport(chunk int, pause time.Duration) *davFaultTransport {
	next := http.DefaultTransport.(*http.Transport).Clone()
	next.ExpectContinueTimeout = time.Second // as NewWebDAV's own transport
	next.MaxIdleConnsPerHost = 2 * DefaultWorkers
	return &davFaultTransport{next: next, chunk: chunk, pause: pause, half: make(chan *davFaultBody, 1), released: make(chan struct{})}
}

// release lets a held body go on; idempotent.
func (tr *davFaultTransport) release() { tr.closeOnce.Do(func() { close(tr.released) }) }

func (tr *davFaultTransport) interruptedPuts() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.cut)
}

func (tr *davFaultTransport) CloseIdleConnections() { tr.next.CloseIdleConnections() }

func (tr *davFaultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut || req.Body == nil || req.Body == http.NoBody || req.ContentLength <= 0 {
		return tr.next.RoundTrip(req)
	}
	name := req.URL.Path
	var mu sync.Mutex
	var bodies []*davFaultBody
	wrap := func(rc io.ReadCloser) *davFaultBody {
		b := &davFaultBody{tr: tr, rc: rc, name: name, size: req.ContentLength}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		return b
	}
	r := req.Clone(req.Context())
	r.Body = wrap(req.Body)
	if req.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			rc, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			return wrap(rc), nil
		}
	}
	resp, err := tr.next.RoundTrip(r)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if read := b.read.Load(); read > 0 && read < b.size {
				b.setErr(err)
				b.interrupted.Store(true)
				tr.mu.Lock()
				tr.cut = append(tr.cut, fmt.Sprintf("%s: %d of %d bytes: %v", name, read, b.size, err))
				tr.mu.Unlock()
			}
		}
	}
	return resp, err
}

// davFaultBody is one PUT body going through davFaultTransport.
type davFaultBody struct {
	tr   *davFaultTransport
	rc   io.ReadCloser
	name string
	size int64

	read        atomic.Int64
	interrupted atomic.Bool // its round trip failed with part of it read
	errMu       sync.Mutex
	rtErr       error
}

func (b *davFaultBody) setErr(err error) {
	b.errMu.Lock()
	b.rtErr = err
	b.errMu.Unlock()
}

func (b *davFaultBody) err() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.rtErr
}

func (b *davFaultBody) Read(p []byte) (int, error) {
	time.Sleep(b.tr.pause)
	if len(p) > b.tr.chunk {
		p = p[:b.tr.chunk]
	}
	n, err := b.rc.Read(p)
	if read := b.read.Add(int64(n)); n > 0 && read >= b.size/2 && read < b.size {
		held := false
		b.tr.halfOnce.Do(func() {
			held = true
			b.tr.half <- b
		})
		if held {
			select {
			case <-b.tr.released:
			case <-time.After(30 * time.Second): // a test gone wrong must not hang the transport
			}
		}
	}
	return n, err
}

func (b *davFaultBody) Close() error { return b.rc.Close() }
