package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/siphook/siphook/recorder"
)

// TestExport: a test day exports as a CSV with exactly the documented columns, one row per finished
// recording of the day, mapped from the documents; JSON carries the same columns as keys.
func TestExport(t *testing.T) {
	dir := t.TempDir()
	rec, err := recorder.New(recorder.Config{Dir: dir, FlushInterval: time.Hour, MaxAhead: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	end := day.Add(9*time.Hour + 95*time.Second)
	for _, doc := range []recorder.Document{
		{RecordingID: "r1", Source: "siprec", State: recorder.StateCompleted, Start: day.Add(9 * time.Hour), End: &end, DurationSec: 95,
			Session: map[string]string{"sip_call_id": "abc@sbc"},
			Participants: []recorder.Participant{{ID: "p1", Name: "Carol Customer", AOR: "sip:+15550100@sbc", Role: "caller"},
				{ID: "p2", AOR: "sip:+18005550199@gc", Role: "callee"}},
			Channels: []recorder.ChannelInfo{{Index: 0, Codec: "PCMU"}, {Index: 1, Codec: "PCMU"}},
			Audio:    &recorder.AudioInfo{File: "x.wav", SampleRate: 8000, Channels: 2, Samples: 94 * 8000},
			Call: &recorder.CallInfo{ConversationID: "be9d0000-0000-4000-8000-000000000001", Direction: "inbound", ANI: "tel:+15550100",
				DNIS: "tel:+18005550199", Agents: []recorder.CallAgent{{UserID: "u1", Name: "Alice Agent"}}},
			Analytics: &recorder.Analytics{SilenceRatio: 0.25, TalkOverRatio: 0.031, LongestSilenceSec: 7.46, MOS: 4.3712,
				MediaErrors: []recorder.MediaError{{Type: "ssrc_change"}, {Type: "timestamp_jump"}, {Type: "ssrc_change"}}}},
		{RecordingID: "r2", Source: "audiohook", State: recorder.StateNeverActivated, Start: day.Add(10 * time.Hour), DurationSec: 3},
		{RecordingID: "r3", Source: "siprec", State: recorder.StateCompleted, Start: day.Add(24 * time.Hour)}, // the next day
	} {
		if err := rec.WriteDocument(&doc); err != nil {
			t.Fatal(err)
		}
	}

	var out, errOut bytes.Buffer
	if err := run([]string{"export", "-format", "csv", "-from", "2026-11-20", dir}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v", err)
	}
	if !slices.Equal(records[0], exportColumns) || len(exportColumns) != 20 {
		t.Fatalf("header %q", records[0])
	}
	if len(records) != 3 {
		t.Fatalf("%d rows, want the day's 2 recordings: %q", len(records)-1, records[1:])
	}
	want := []string{"2026-11-20 09:00:00", "2026-11-20 09:01:35", "0:01:35", "Alice Agent", "+15550100", "Carol Customer",
		"+18005550199", "", "Inbound", "To User", "be9d0000-0000-4000-8000-000000000001", "25.0", "3.1", "7.5",
		"ssrc_change:2;timestamp_jump:1", "4.37", "PCMU", "0:01:34", "SIPREC", "Voice"}
	if !slices.Equal(records[1], want) {
		t.Errorf("row 1:\n got %q\nwant %q", records[1], want)
	}
	if r := records[2]; r[10] != "r2" || r[18] != "Genesys AudioHook" || r[11] != "" || r[15] != "" {
		t.Errorf("row 2 (never recorded, no analytics) %q", r)
	}

	out.Reset()
	if err := run([]string{"export", "-format", "json", "-from", "2026-11-20T00:00:00Z", "-to", "2026-11-22T00:00:00Z", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 3 || rows[0]["Voice Quality"] != "4.37" || len(rows[0]) != 20 {
		t.Errorf("json: %v, %d rows: %v", err, len(rows), rows)
	}
}
