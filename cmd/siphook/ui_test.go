package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siphook/siphook/api"
	"github.com/siphook/siphook/internal/browsertest"
)

// TestUIOnDemoRecordings is the acceptance test of the web UI on real data: headless Chromium opens the UI of
// a server holding the demo's recordings, searches by agent, opens a recording, presses play and sees the
// player's time advance, and saves screenshots (ui-demo-*.png, in $SIPHOOK_ARTIFACT_DIR for CI).
func TestUIOnDemoRecordings(t *testing.T) {
	b := browsertest.New(t) // first: skips before the story is played when there is no Chromium
	d, _ := startTestDemo(t)

	// The API the UI uses, straight: Alice is on four of the six records. She took the inbound SIPREC call,
	// the AudioHook call and the consulted customer's call; the consult leg, though never recorded, was
	// matched to that same conversation and so carries its agent, Alice, too. (Bob, the consulted agent, is
	// not among the call's agents.)
	if got := listRecordings(t, d.url()+"api/v1/recordings?agent=alice"); got.Total != 4 || len(got.Recordings) != 4 {
		t.Errorf("agent=alice: total %d, %d recordings; want 4 (inbound, AudioHook, consult call, consult leg)", got.Total, len(got.Recordings))
	} else {
		states := map[string]int{}
		for _, r := range got.Recordings {
			states[r.State]++
		}
		if states["completed"] != 3 || states["never_activated"] != 1 {
			t.Errorf("agent=alice: states %v, want 3 completed and 1 never_activated (the consult leg)", states)
		}
	}
	bob := listRecordings(t, d.url()+"api/v1/recordings?agent=bob")
	unmatched := listRecordings(t, d.url()+"api/v1/recordings?matched=false")
	if bob.Total != 1 || unmatched.Total != 1 {
		t.Fatalf("agent=bob: %d recordings, matched=false: %d; want 1 and 1", bob.Total, unmatched.Total)
	}

	const rows = `document.querySelectorAll('#results tr.recording')`

	// The search page lists everything the story left.
	b.Step("open the UI", 30*time.Second, chromedp.Navigate(d.url()))
	b.Wait(rows + `.length === 6`)
	if got := b.Eval(`document.getElementById('total').textContent`); got != "6 recordings" {
		t.Errorf("#total %q, want \"6 recordings\"", got)
	}

	// Search by agent, as an operator types it.
	b.Step("search Bob", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#f-agent"), "Bob"),
		chromedp.Click(chromedp.CSS("#search-submit")))
	b.Wait(`location.hash === '#/?agent=Bob' && ` + rows + `.length === 1 && ` + rows + `[0].textContent.includes('Bob Agent')`)
	if got := b.Eval(rows + `[0].dataset.id`); got != bob.Recordings[0].ID {
		t.Errorf("the row for Bob is %s; the API says %s", got, bob.Recordings[0].ID)
	}
	row := b.Eval(rows + `[0].textContent`)
	for _, want := range []string{"siprec", "completed", "outbound", "✓"} {
		if !strings.Contains(row, want) {
			t.Errorf("Bob's row %q lacks %q", row, want)
		}
	}

	// Open it: the player and one waveform per channel (customer, agent).
	b.Step("open Bob's recording", 10*time.Second, chromedp.Click(chromedp.CSS("#results tr.recording a.recording-link")))
	b.Wait(`location.hash === '#/recordings/` + bob.Recordings[0].ID + `' && document.getElementById('player') !== null && ` +
		`document.querySelectorAll('#waveforms canvas.waveform').length === 2`)
	if got := b.Eval(`document.getElementById('agents').textContent`); !strings.Contains(got, "Bob Agent") {
		t.Errorf("#agents %q lacks Bob Agent", got)
	}
	if got := b.Eval(`String(document.getElementById('why'))`); got != "null" {
		t.Errorf("#why shown for a matched, completed recording")
	}

	// Play: the audio element's time advances, and so does the time shown. (The recording is 1.5 s long; the
	// shown time floors to whole seconds, so it leaves 0:00 after a second of playing.)
	b.Step("play", 10*time.Second, chromedp.Click(chromedp.CSS("#play")))
	b.Wait(`document.getElementById('player').currentTime > 0.5`)
	b.Wait(`!document.getElementById('time').textContent.startsWith('0:00 ')`)
	b.Screenshot("ui-demo-recording.png") // the CI artefact

	// The unmatched session says why.
	b.Step("search unmatched", 10*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/?matched=false'`))
	b.Wait(rows + `.length === 1 && ` + rows + `[0].dataset.id === '` + unmatched.Recordings[0].ID + `'`)
	b.Step("open unmatched", 10*time.Second, chromedp.Click(chromedp.CSS("#results tr.recording a.recording-link")))
	b.Wait(`document.getElementById('why') !== null && document.getElementById('why').offsetParent !== null`)
	if why := b.Eval(`document.getElementById('why').textContent`); !strings.Contains(why, "no CTI event with ucid") {
		t.Errorf("#why %q lacks the reason", why)
	}

	// Every call of the story has ended: no live session is left.
	b.Step("live", 10*time.Second, chromedp.Click(chromedp.CSS("#nav-live")))
	b.Wait(`document.getElementById('sessions') !== null && document.getElementById('live-count').textContent !== ''`)
	if got := b.Eval(`document.querySelectorAll('#sessions tr.session').length + ' / ' + document.getElementById('live-count').textContent`); got != "0 / 0 sessions" {
		t.Errorf("live sessions: %s, want 0", got)
	}
	b.Screenshot("ui-demo-live.png")

	b.CheckPageErrors()
}

// listRecordings gets one page of GET /api/v1/recordings.
func listRecordings(t *testing.T, url string) api.Page {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p api.Page
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return p
}
