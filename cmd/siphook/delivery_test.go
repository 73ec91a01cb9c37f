package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Store is a fake S3 on loopback that can be down (503 to everything) and counts the PUTs it stored.
type s3Store struct {
	*httptest.Server
	backend *s3mem.Backend
	down    atomic.Bool
	mu      sync.Mutex
	puts    map[string]int // object key → PUTs answered 200
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func newS3Store(t *testing.T, bucket string) *s3Store {
	t.Helper()
	s := &s3Store{backend: s3mem.New(), puts: map[string]int{}}
	if err := s.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(s.backend).Server()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: 200}
		fake.ServeHTTP(sw, r)
		if r.Method == http.MethodPut && sw.code == 200 {
			s.mu.Lock()
			s.puts[strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")]++
			s.mu.Unlock()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestDeliveryAfterKill9: recordings queued for an archive that is down survive kill -9 of the server;
// after a restart on the same directory each is delivered, once, with its checksum intact.
func TestDeliveryAfterKill9(t *testing.T) {
	const bucket, calls = "recordings", 3
	store := newS3Store(t, bucket)
	store.down.Store(true)
	dir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "siphook.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`delivery:
  targets:
    - {name: archive, type: s3, endpoint: %q, bucket: %s, region: us-east-1, insecure: true, path_style: true,
       access_key: AKIDTEST, secret_key: test-secret-key, prefix: site-1}
  min_backoff: 10ms
  max_backoff: 100ms
  retry_interval: 200ms
`, strings.TrimPrefix(store.URL, "http://"), bucket)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServerIn(t, dir, "immediate", "SIPHOOK_CONFIG="+cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range calls {
		call := oracleCall(ctx, t, srv)
		call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond)
		if err := call.Bye(ctx); err != nil {
			t.Fatal(err)
		}
	}
	jobs := func() int {
		entries, _ := os.ReadDir(filepath.Join(dir, ".queue"))
		n := 0
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") {
				n++
			}
		}
		return n
	}
	waitUntil(t, "the three recordings queued", func() bool { return jobs() == calls })
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	srv.done <- nil // for the cleanup

	store.down.Store(false)
	startServerIn(t, dir, "immediate", "SIPHOOK_CONFIG="+cfgPath)
	waitUntil(t, "the queue emptied after the restart", func() bool { return jobs() == 0 })

	docs := readDocuments(dir)
	if len(docs) != calls {
		t.Fatalf("%d documents, want %d", len(docs), calls)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for _, doc := range docs {
		docRel := strings.TrimSuffix(doc.Audio.File, ".wav") + ".json"
		for _, rel := range []string{doc.Audio.File, docRel} {
			key := "site-1/" + rel
			if n := store.puts[key]; n != 1 {
				t.Errorf("%s stored %d times, want once", key, n)
			}
			obj, err := store.backend.GetObject(bucket, key, nil)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			remote, _ := io.ReadAll(obj.Contents)
			obj.Contents.Close()
			local, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(remote) != sha256.Sum256(local) {
				t.Errorf("%s: the archived copy differs from the local file", key)
			}
		}
		if sum := sha256.Sum256(mustRead(t, filepath.Join(dir, doc.Audio.File))); doc.Audio.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: document says sha256 %s, the file has %x", doc.RecordingID, doc.Audio.SHA256, sum)
		}
	}
	if len(store.puts) != 2*calls {
		t.Errorf("%d objects stored, want %d: %v", len(store.puts), 2*calls, store.puts)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
