// Package browsertest drives headless Chromium for the UI tests: it starts /usr/bin/chromium with chromedp,
// runs steps with their own timeouts, waits for JavaScript conditions in a way the UI's Content Security
// Policy allows, saves screenshots as CI artefacts, and collects what goes wrong in the page (uncaught
// exceptions, console errors, CSP violations) for the test to check.
//
// The tests skip without Chromium or in -short mode; with SIPHOOK_REQUIRE_CHROMIUM=1 (as in CI) they fail
// instead. Screenshots go to $SIPHOOK_ARTIFACT_DIR when set, else to the test's temporary directory.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const (
	// Chromium is the browser the tests drive.
	Chromium = "/usr/bin/chromium"
	// RequireEnv set to "1" turns a missing Chromium or -short into a failure rather than a skip.
	RequireEnv = "SIPHOOK_REQUIRE_CHROMIUM"
	// ArtifactEnv names the directory screenshots are saved to.
	ArtifactEnv = "SIPHOOK_ARTIFACT_DIR"

	// Lifetime bounds everything a Browser does, from its start.
	Lifetime = 2 * time.Minute
	// WaitTimeout is how long Wait waits for its condition.
	WaitTimeout = 20 * time.Second
	// EvalTimeout bounds one Eval.
	EvalTimeout = 10 * time.Second
	// ScreenshotTimeout bounds one Screenshot.
	ScreenshotTimeout = 20 * time.Second
)

// cspListener records the page's CSP violations in window.__csp; it is injected into every new document.
const cspListener = `window.__csp = []; document.addEventListener('securitypolicyviolation',
	(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));`

// Browser is one headless Chromium with one tab, tied to a test. Its methods end the test with t.Fatal when
// a step fails, so they must be called from the test's goroutine.
type Browser struct {
	t   *testing.T
	ctx context.Context // the tab's
	dir string          // where screenshots go

	mu         sync.Mutex
	pageErrors []string
}

// New starts Chromium for t, or skips t when there is no Chromium or in -short mode (fails instead with
// SIPHOOK_REQUIRE_CHROMIUM=1). The browser is closed when t ends; everything it does must be over within
// Lifetime.
func New(t *testing.T) *Browser {
	t.Helper()
	required := os.Getenv(RequireEnv) == "1"
	if _, err := os.Stat(Chromium); err != nil {
		if required {
			t.Fatalf("%s=1 but %s: %v", RequireEnv, Chromium, err)
		}
		t.Skipf("no %s", Chromium)
	}
	if testing.Short() && !required {
		t.Skip("short mode")
	}

	b := &Browser{t: t, dir: os.Getenv(ArtifactEnv)}
	if b.dir == "" {
		b.dir = t.TempDir()
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Registered before the cancellations below, so removed after Chromium has exited.
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	// Cleanups run last-in first-out: the tab closes, then the browser, then the root context.
	root, cancel := context.WithTimeout(context.Background(), Lifetime)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(cancelTab)
	b.ctx = ctx

	if err := chromedp.Do(ctx); err != nil { // starts the browser with no step timeout
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: cspListener,
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// listen collects page errors: uncaught exceptions and errors logged by scripts. Errors the network source
// logs (a 401 or 404 answer) are left out: the tests provoke some and check the UI's reaction themselves.
func (b *Browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.pageErrors = append(b.pageErrors, fmt.Sprintf("exception %s:%d: %s", d.URL, d.LineNumber, msg))
	case *log.EventEntryAdded:
		if src := string(ev.Entry.Source); ev.Entry.Level == "error" && src != "network" {
			b.pageErrors = append(b.pageErrors, fmt.Sprintf("log %s: %s", src, ev.Entry.Text))
		}
	}
}

// Context is the tab's context, for chromedp calls the methods do not cover. It has no timeout of its own
// but Lifetime's.
func (b *Browser) Context() context.Context { return b.ctx }

// ArtifactDir is the directory Screenshot saves to.
func (b *Browser) ArtifactDir() string { return b.dir }

// Step runs actions within timeout, and ends the test with the step's name if they fail.
func (b *Browser) Step(name string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
}

// Wait evaluates the JavaScript expression expr in the page until it is truthy, for up to WaitTimeout.
func (b *Browser) Wait(expr string) {
	b.t.Helper()
	if err := waitJS(b.ctx, expr, WaitTimeout); err != nil {
		b.t.Fatal(err)
	}
}

// waitJS evaluates expr in the page until it is truthy. Chromedp's Poll compiles its predicate with
// new Function, which the UI's CSP (rightly) forbids, so this polls from Go instead.
func waitJS(ctx context.Context, expr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", expr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Eval evaluates the JavaScript expression expr, which must give a string.
func (b *Browser) Eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, EvalTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// Screenshot saves a PNG of the whole page as name in the artefact directory, logs and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, ScreenshotTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(b.dir, name)
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", file)
	return file
}

// CheckPageErrors reports, with t.Errorf, the CSP violations of the current document and every page error
// seen since the browser started. Call it at the end of the test, on the page that was last loaded (a
// navigation starts a new list of CSP violations; a hash change does not).
func (b *Browser) CheckPageErrors() {
	b.t.Helper()
	if got := b.Eval(`window.__csp.join('\n')`); got != "" {
		b.t.Errorf("CSP violations:\n%s", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pageErrors) > 0 {
		b.t.Errorf("page errors:\n%s", strings.Join(b.pageErrors, "\n"))
	}
}
