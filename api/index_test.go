package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

// fixture writes five documents that differ in every filtered field.
func fixture(t *testing.T, r *recorder.Recorder) {
	t.Helper()
	for _, d := range []recorder.Document{
		{RecordingID: "d1", Source: "siprec", State: recorder.StateCompleted, Start: t0.Add(1 * time.Hour),
			Identifiers: []recorder.Identifier{{Kind: "ucid", Value: "00071252811778010124", Origin: "User-to-User"}},
			Call: &recorder.CallInfo{Tenant: "acme", ConversationID: "BE9D-1", Direction: "inbound", ANI: "tel:+15550100",
				DNIS: "tel:+18005550199", QueueID: "q-1", Agents: []recorder.CallAgent{{UserID: "u-1", Name: "Alice Agent"}},
				MatchedBy: "ucid 00071252811778010124"}},
		{RecordingID: "d2", Source: "audiohook", State: recorder.StateCompleted, Start: t0.Add(2 * time.Hour),
			Call: &recorder.CallInfo{Tenant: "globex", ConversationID: "c-2", Direction: "outbound", ANI: "sip:Anonymous@invalid",
				DNIS: "tel:+15550111", Agents: []recorder.CallAgent{{UserID: "u-2", Name: "Bob Builder"}}, MatchedBy: "conversation_id c-2"}},
		{RecordingID: "d3", Source: "siprec", State: recorder.StateNeverActivated, Start: t0.Add(3 * time.Hour),
			Unmatched: "no CTI call carried the ucid",
			Participants: []recorder.Participant{{ID: "p1", AOR: "sip:+15550100@pbx", Role: "caller"},
				{ID: "p2", AOR: "sip:4000@pbx", Role: "callee"}}},
		{RecordingID: "d4", Source: "siprec", State: recorder.StateFailed, Start: t0.Add(4 * time.Hour),
			Call: &recorder.CallInfo{Tenant: "acme", ConversationID: "c-4", Direction: "Inbound",
				Agents: []recorder.CallAgent{{UserID: "u-3", Name: "alice cooper"}}, MatchedBy: "ucid 2"}},
		{RecordingID: "d5", Source: "siprec", State: recorder.StateRecording, Start: t0.Add(5 * time.Hour)},
	} {
		writeDoc(t, r, d)
	}
}

func ids(page Page) []string {
	var out []string
	for _, s := range page.Recordings {
		out = append(out, s.ID)
	}
	return out
}

func TestSummarize(t *testing.T) {
	end := t0.Add(time.Minute)
	tests := []struct {
		name string
		doc  recorder.Document
		want Summary
	}{{
		name: "matched, with audio",
		doc: recorder.Document{RecordingID: "r1", Source: "siprec", State: "completed", Start: t0.In(time.FixedZone("X", 3600)),
			End: &end, DurationSec: 60, Unmatched: "",
			Identifiers:  []recorder.Identifier{{Kind: "ucid", Value: "7", Raw: "04FA", Origin: "User-to-User"}},
			Participants: []recorder.Participant{{Role: "caller", AOR: "sip:other@x"}},
			Audio:        &recorder.AudioInfo{File: "2026/11/21/r1.wav", SampleRate: 8000, Channels: 2, Samples: 480000},
			Call: &recorder.CallInfo{Tenant: "t", ConversationID: "c", Direction: "inbound", QueueID: "q", ANI: "tel:+1",
				DNIS: "tel:+2", Agents: []recorder.CallAgent{{UserID: "u", Name: "N"}}, MatchedBy: "ucid 7"}},
		want: Summary{ID: "r1", Source: "siprec", State: "completed", Start: t0, End: &end, DurationSec: 60, Tenant: "t",
			ConversationID: "c", Direction: "inbound", ANI: "tel:+1", DNIS: "tel:+2", QueueID: "q",
			Agents: []Agent{{UserID: "u", Name: "N"}}, Matched: true, MatchedBy: "ucid 7",
			Identifiers: []Key{{Kind: "ucid", Value: "7"}}, Channels: 2, SampleRate: 8000, HasAudio: true,
			Document: "2026/11/21/r1.json", Audio: "2026/11/21/r1.wav"},
	}, {
		name: "unmatched: numbers from the participants, an empty file",
		doc: recorder.Document{RecordingID: "r2", Source: "siprec", State: "recording", Start: t0, Unmatched: "why",
			Participants: []recorder.Participant{{Role: "callee", AOR: "sip:4000@pbx"}, {Role: "caller", AOR: "sip:+1555@pbx"}},
			Audio:        &recorder.AudioInfo{File: "2026/11/21/r2.wav", SampleRate: 8000, Channels: 1}},
		want: Summary{ID: "r2", Source: "siprec", State: "recording", Start: t0, ANI: "sip:+1555@pbx", DNIS: "sip:4000@pbx",
			Agents: []Agent{}, Unmatched: "why", Identifiers: []Key{}, Channels: 1, SampleRate: 8000,
			Document: "2026/11/21/r2.json", Audio: "2026/11/21/r2.wav"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := strings.TrimSuffix(tt.want.Audio, ".wav") + ".json"
			got, _ := json.Marshal(summarize(rel, tt.doc))
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("summary\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestQueryFilters(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	fixture(t, newRecorder(t, dir, ix))
	at := func(h int) string { return url.QueryEscape(t0.Add(time.Duration(h) * time.Hour).Format(time.RFC3339)) }

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"d5", "d4", "d3", "d2", "d1"}},
		{"from=" + at(2), []string{"d5", "d4", "d3", "d2"}},
		{"to=" + at(2), []string{"d1"}},
		{"from=" + at(2) + "&to=" + at(4), []string{"d3", "d2"}},
		{"from=" + url.QueryEscape(t0.Add(2*time.Hour+1).Format(time.RFC3339Nano)), []string{"d5", "d4", "d3"}},
		{"tenant=acme", []string{"d4", "d1"}},
		{"tenant=ACME", nil},
		{"conversation_id=be9d-1", []string{"d1"}},
		{"conversation_id=be9d", nil},
		{"agent=u-1", []string{"d1"}},
		{"agent=u-", nil}, // user ids match exactly
		{"agent=ALICE", []string{"d4", "d1"}},
		{"agent=builder", []string{"d2"}},
		{"ani=" + url.QueryEscape("+1 555 0100"), []string{"d3", "d1"}}, // d3 by its caller participant
		{"ani=5550100", []string{"d3", "d1"}},
		{"ani=anonymous", []string{"d2"}},
		{"ani=5550111", nil},
		{"dnis=800", []string{"d1"}},
		{"dnis=" + url.QueryEscape("(555) 0111"), []string{"d2"}},
		{"dnis=4000", []string{"d3"}},
		{"dnis=pbx", []string{"d3"}},
		{"direction=inbound", []string{"d4", "d1"}},
		{"direction=OUTBOUND", []string{"d2"}},
		{"matched=true", []string{"d4", "d2", "d1"}},
		{"matched=false", []string{"d5", "d3"}},
		{"source=audiohook", []string{"d2"}},
		{"source=siprec", []string{"d5", "d4", "d3", "d1"}},
		{"state=failed", []string{"d4"}},
		{"state=recording", []string{"d5"}},
		{"state=never_activated", []string{"d3"}},
		{"state=completed", []string{"d2", "d1"}},
		{"tenant=acme&direction=inbound&agent=alice&matched=true", []string{"d4", "d1"}},
		{"tenant=acme&source=audiohook", nil},
		{"tenant=&agent=", []string{"d5", "d4", "d3", "d2", "d1"}}, // empty means absent
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			f, limit, cursor, err := ParseFilter(q)
			if err != nil {
				t.Fatal(err)
			}
			page, err := ix.Query(f, limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page); !slices.Equal(got, tt.want) || page.Total != len(tt.want) || page.NextCursor != "" {
				t.Errorf("got %q (total %d, cursor %q), want %q", got, page.Total, page.NextCursor, tt.want)
			}
		})
	}
}

func TestParseFilterInvalid(t *testing.T) {
	tests := []struct{ query, param string }{
		{"from=yesterday", "from"},
		{"to=2026-11-21", "to"},
		{"from=2026-11-21T10:00:00Z&to=2026-11-21T10:00:00Z", "to"},
		{"direction=sideways", "direction"},
		{"matched=yes", "matched"},
		{"matched=1", "matched"},
		{"source=sip", "source"},
		{"state=done", "state"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"cursor=%21%21", "cursor"},
		{"cursor=" + encodeCursor(sortKey{1, "x"})[1:], "cursor"},
		{"cursor=AA", "cursor"}, // base64 of a wrong version byte
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			_, _, _, err := ParseFilter(q)
			if err == nil || !strings.Contains(err.Error(), "parameter "+tt.param) {
				t.Errorf("error %v, want one naming parameter %s", err, tt.param)
			}
		})
	}
	f, limit, cursor, err := ParseFilter(url.Values{"limit": {"7"}, "matched": {"false"}, "direction": {"Inbound"}})
	if err != nil || limit != 7 || cursor != "" || f.Matched == nil || *f.Matched || f.Direction != "inbound" {
		t.Errorf("ParseFilter = %+v, %d, %q, %v", f, limit, cursor, err)
	}
	if _, limit, _, _ := ParseFilter(nil); limit != DefaultLimit {
		t.Errorf("default limit %d, want %d", limit, DefaultLimit)
	}
}

func TestPagination(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	r := newRecorder(t, dir, ix)
	// Seven recordings, with ties in start time: order is by id then.
	for i, off := range []int{0, 0, 1, 2, 2, 2, 3} {
		writeDoc(t, r, recorder.Document{RecordingID: fmt.Sprintf("r%d", i), Source: "siprec", State: "completed",
			Start: t0.Add(time.Duration(off) * time.Minute)})
	}
	want := []string{"r6", "r5", "r4", "r3", "r2", "r1", "r0"}
	all, err := ix.Query(Filter{}, MaxLimit, "")
	if err != nil || !slices.Equal(ids(all), want) {
		t.Fatalf("all = %q, %v; want %q", ids(all), err, want)
	}

	var got []string
	cursor, pages := "", 0
	for {
		page, err := ix.Query(Filter{}, 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if pages++; pages == 1 {
			// Recordings arriving mid-walk, newer than the cursor or tied with a listed one, do not disturb it.
			writeDoc(t, r, recorder.Document{RecordingID: "new", Source: "siprec", State: "recording", Start: t0.Add(time.Hour)})
			writeDoc(t, r, recorder.Document{RecordingID: "r55", Source: "siprec", State: "recording", Start: t0.Add(2 * time.Minute)})
		} else if page.Total != len(want)+2 {
			t.Errorf("page %d: total %d, want %d", pages, page.Total, len(want)+2)
		}
		if len(page.Recordings) > 2 {
			t.Fatalf("page of %d", len(page.Recordings))
		}
		got = append(got, ids(page)...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if !slices.Equal(got, want) || pages != 4 {
		t.Errorf("walked %q in %d pages, want %q in 4", got, pages, want)
	}

	// A filtered walk pages over the matches only.
	page, _ := ix.Query(Filter{State: "recording"}, 1, "")
	if ids(page)[0] != "new" || page.Total != 2 || page.NextCursor == "" {
		t.Errorf("filtered first page %q total %d", ids(page), page.Total)
	}
	page, _ = ix.Query(Filter{State: "recording"}, 1, page.NextCursor)
	if !slices.Equal(ids(page), []string{"r55"}) || page.NextCursor != "" {
		t.Errorf("filtered second page %q, cursor %q", ids(page), page.NextCursor)
	}

	if _, err := ix.Query(Filter{}, 2, "garbage!"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

// journalLines returns the journal's lines.
func journalLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, indexDirName, journalName))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func summaries(ix *Index) []Summary {
	page, _ := ix.Query(Filter{}, MaxLimit, "")
	return page.Recordings
}

func TestIndexPersistence(t *testing.T) {
	// setup writes d1..d5 (d5's state changes once), closes the index, and returns the directory.
	setup := func(t *testing.T) (string, []Summary) {
		dir := t.TempDir()
		ix, err := OpenIndex(dir, WithIndexLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		r := newRecorder(t, dir, ix)
		fixture(t, r)
		writeDoc(t, r, recorder.Document{RecordingID: "d5", Source: "siprec", State: recorder.StateCompleted, Start: t0.Add(5 * time.Hour)})
		before := summaries(ix)
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		return dir, before
	}
	journal := func(dir string) string { return filepath.Join(dir, indexDirName, journalName) }
	d1 := func(dir string) string { return filepath.Join(dir, "2026/11/21/d1.json") }

	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		rebuilt bool // else the journal was used: d1's row outlives its deleted document
	}{
		{"journal used", func(t *testing.T, dir string) {}, false},
		{"journal missing", func(t *testing.T, dir string) { os.Remove(journal(dir)) }, true},
		{"garbage header", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(journal(dir))
			os.WriteFile(journal(dir), append([]byte("garbage\n"), b...), 0o640)
		}, true},
		{"wrong version", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(journal(dir))
			os.WriteFile(journal(dir), bytes.Replace(b, []byte(`{"siphook_index":1}`), []byte(`{"siphook_index":2}`), 1), 0o640)
		}, true},
		{"empty file", func(t *testing.T, dir string) { os.WriteFile(journal(dir), nil, 0o640) }, true},
		{"bad entry in the middle", func(t *testing.T, dir string) {
			lines := journalLines(t, dir)
			lines[2] = "{not json"
			os.WriteFile(journal(dir), []byte(strings.Join(lines, "\n")+"\n"), 0o640)
		}, true},
		{"torn last line", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(journal(dir), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(`{"id":"torn","source":"sip`)
			f.Close()
		}, false},
		{"torn last line ending in a newline", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(journal(dir), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("\x00\x00\x00\n")
			f.Close()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, before := setup(t)
			if err := os.Remove(d1(dir)); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)
			ix := openIndex(t, dir)
			want := before
			if tt.rebuilt {
				want = slices.DeleteFunc(slices.Clone(before), func(s Summary) bool { return s.ID == "d1" })
			}
			got, _ := json.Marshal(summaries(ix))
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(got, wantJSON) {
				t.Errorf("after reopening\n got %s\nwant %s", got, wantJSON)
			}
			if s, _ := ix.Get("d5"); s.State != recorder.StateCompleted {
				t.Errorf("d5 state %q: the last entry must win", s.State)
			}
			// The journal takes appends again, on lines of their own, and reads back.
			ix.Observe("2026/11/21/after.json", recorder.Document{RecordingID: "after", Source: "siprec", Start: t0})
			ix.Close()
			if ix2 := openIndex(t, dir); ix2.Len() != len(want)+1 {
				t.Errorf("second reopen: %d rows, want %d", ix2.Len(), len(want)+1)
			}
			if lines := journalLines(t, dir); lines[0] != `{"siphook_index":1}` {
				t.Errorf("journal header %q", lines[0])
			}
		})
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	for i := range 10 {
		ix.Observe("a.json", recorder.Document{RecordingID: "a", State: fmt.Sprint(i), Start: t0})
	}
	ix.Observe("b.json", recorder.Document{RecordingID: "b", Start: t0})
	ix.forget("b")
	ix.Close()
	if n := len(journalLines(t, dir)); n != 1+12 {
		t.Fatalf("journal of %d lines before compaction, want 13", n)
	}
	ix = openIndex(t, dir)
	if lines := journalLines(t, dir); len(lines) != 2 || !strings.Contains(lines[1], `"state":"9"`) {
		t.Errorf("compacted journal %q", lines)
	}
	if s, ok := ix.Get("a"); !ok || s.State != "9" || ix.Len() != 1 {
		t.Errorf("after compaction: %+v %v, %d rows", s, ok, ix.Len())
	}
	if _, ok := ix.Get("b"); ok {
		t.Error("forgotten recording came back")
	}
}

func TestRebuild(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	fixture(t, newRecorder(t, dir, ix))
	for name, content := range map[string]string{
		"2026/11/21/other.json":        `{"foo": 1}`, // JSON, but not a document
		"2026/11/21/broken.json":       `{"recording_id": "broken"`,
		"2026/11/21/.tmp.json":         `{"recording_id": "hidden"}`,
		".index/copy.json":             `{"recording_id": "in-index-dir"}`,
		"2026/11/21/notes.txt":         `{"recording_id": "not-json-ext"}`,
		"elsewhere/deep/external.json": `{"recording_id": "external", "source": "siprec", "state": "completed", "start": "2026-11-20T00:00:00Z"}`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "2026/11/21/d2.json"))
	ix.Observe("2026/11/21/ghost.json", recorder.Document{RecordingID: "ghost", Start: t0}) // no file: gone after a rebuild

	n, err := ix.Rebuild()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d5", "d4", "d3", "d1", "external"}
	if got := ids(Page{Recordings: summaries(ix)}); n != len(want) || !slices.Equal(got, want) {
		t.Errorf("rebuilt %d: %q, want %q", n, got, want)
	}
	if s, _ := ix.Get("external"); s.Document != "elsewhere/deep/external.json" {
		t.Errorf("document path %q", s.Document)
	}
	if lines := journalLines(t, dir); len(lines) != 1+len(want) {
		t.Errorf("journal after rebuild has %d lines, want %d", len(lines), 1+len(want))
	}
}

// Observe, Query, Get, forget and Rebuild from many goroutines: for the race detector, and nothing observed
// may be lost.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	r := newRecorder(t, dir, ix)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := r.WriteDocument(&recorder.Document{RecordingID: fmt.Sprintf("w%d-%d", w, i), Source: "siprec",
					State: "completed", Start: t0.Add(time.Duration(i) * time.Second)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := ix.Rebuild(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for range 50 {
			if _, err := ix.Query(Filter{Agent: "x", ANI: "1"}, 10, ""); err != nil {
				t.Error(err)
			}
			ix.Get("w0-0")
		}
	})
	wg.Wait()
	if ix.Len() != writers*each {
		t.Errorf("%d rows, want %d", ix.Len(), writers*each)
	}
	ix.Close()
	if ix := openIndex(t, dir); ix.Len() != writers*each {
		t.Errorf("after reopening: %d rows, want %d", ix.Len(), writers*each)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "from=2026-11-21T10:00:00Z&to=2026-11-22T00:00:00.5Z", "ani=%2B1+555&dnis=x&agent=A",
		"matched=true&limit=500&direction=INBOUND", "limit=-1", "cursor=" + encodeCursor(sortKey{-5, "x"}), "a=%zz&state=failed"} {
		f.Add(s)
	}
	ix := &Index{byID: map[string]*row{}}
	for i := range 3 {
		ix.upsert(newRow(Summary{ID: fmt.Sprint(i), Start: t0.Add(time.Duration(i)), ANI: "tel:+15550100", Agents: []Agent{{"u", "Ann"}}}))
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query) // keeps what parses
		filter, limit, cursor, err := ParseFilter(q)
		if err != nil {
			return
		}
		if limit < 1 || limit > MaxLimit {
			t.Fatalf("limit %d", limit)
		}
		if _, err := ix.Query(filter, limit, cursor); err != nil {
			t.Fatalf("ParseFilter accepted %q, Query refused it: %v", query, err)
		}
	})
}

func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(sortKey{t0.UnixNano(), "0193-abc"}))
	f.Add("")
	f.Add("AQ")
	f.Add("AQAAAAAAAAAAeA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeCursor(s)
		if err != nil {
			return
		}
		if k2, err := decodeCursor(encodeCursor(k)); err != nil || k2 != k {
			t.Fatalf("cursor %q: %+v does not round-trip (%+v, %v)", s, k, k2, err)
		}
	})
}

// BenchmarkQuery backs the README's claim that a linear scan serves a million recordings.
func BenchmarkQuery(b *testing.B) {
	const rows = 1_000_000
	ix := &Index{byID: make(map[string]*row, rows)}
	for i := range rows {
		ix.upsert(newRow(Summary{ID: fmt.Sprintf("r%07d", i), Source: "siprec", State: "completed",
			Start: t0.Add(time.Duration(i) * time.Second), ANI: fmt.Sprintf("tel:+1555%07d", i),
			Agents: []Agent{{UserID: fmt.Sprint("u-", i%500), Name: fmt.Sprint("Agent ", i%500)}}, Matched: i%3 != 0}))
	}
	for _, bm := range []struct {
		name string
		f    Filter
	}{
		{"all", Filter{}},
		{"agent name", Filter{Agent: "agent 42"}},
		{"ani digits", Filter{ANI: "555 0042"}},
		{"one day", Filter{From: t0.Add(100 * time.Hour), To: t0.Add(124 * time.Hour), Matched: ptr(true)}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Query(bm.f, DefaultLimit, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestQueryAnalyticsFilters: ranges over silence ratio, talk-over ratio and MOS; recordings without analytics
// (or without a MOS, for the MOS range) never match a range.
func TestQueryAnalyticsFilters(t *testing.T) {
	dir := t.TempDir()
	ix := openIndex(t, dir)
	r := newRecorder(t, dir, ix)
	for i, a := range []*recorder.Analytics{
		{SilenceRatio: 0.7, TalkOverRatio: 0.01, MOS: 4.4},
		{SilenceRatio: 0.2, TalkOverRatio: 0.15, MOS: 3.1, MediaErrors: []recorder.MediaError{{Type: "ssrc_change"}}},
		{SilenceRatio: 0.4, TalkOverRatio: 0.05}, // AudioHook: no MOS
		nil,                                      // never recorded
	} {
		writeDoc(t, r, recorder.Document{RecordingID: fmt.Sprintf("a%d", i+1), Source: "siprec", State: recorder.StateCompleted,
			Start: t0.Add(time.Duration(i) * time.Minute), Analytics: a})
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"silence_ratio_min=0.5", []string{"a1"}},
		{"silence_ratio_max=0.4", []string{"a3", "a2"}},
		{"talk_over_ratio_min=0.05&talk_over_ratio_max=0.2", []string{"a3", "a2"}},
		{"mos_max=3.5", []string{"a2"}},
		{"mos_min=1", []string{"a2", "a1"}},
		{"silence_ratio_min=0", []string{"a3", "a2", "a1"}},
	} {
		q, _ := url.ParseQuery(tt.query)
		f, limit, cursor, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		page, err := ix.Query(f, limit, cursor)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range page.Recordings {
			got = append(got, s.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	if s, _ := ix.Get("a2"); s.Analytics == nil || s.Analytics.MediaErrors != 1 || s.Analytics.MOS != 3.1 {
		t.Errorf("summary analytics %+v", s.Analytics)
	}
	for _, bad := range []string{"mos_min=0.5", "silence_ratio_max=1.5", "talk_over_ratio_min=x"} {
		q, _ := url.ParseQuery(bad)
		if _, _, _, err := ParseFilter(q); err == nil || !strings.Contains(err.Error(), strings.Split(bad, "=")[0]) {
			t.Errorf("%s: %v, want an error naming the parameter", bad, err)
		}
	}
}
