package sip

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// sippTemplate loads one of the miarec sipp messages with its keywords filled in.
func sippTemplate(t *testing.T, name string) (*siptest.Template, []byte) {
	t.Helper()
	raw := corpusFillSipp(corpusRead(t, name))
	tmpl, err := siptest.ParseTemplate(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(raw, []byte("\n\n"))
	return tmpl, body
}

// TestAvayaDummyParticipantReplacedByUpdate: Avaya SBCE answers the call before it knows the far end, so its
// INVITE names a placeholder participant (sip:ASBCE@asbce.com, no stream id); the real one comes in an
// UPDATE carrying a complete snapshot. The document names the real participants, ties each channel to its
// sender, and the audio on both sides of the UPDATE lands in one file. (This SBCE sends one m-line, label 10;
// the metadata also describes stream 20, which it never offers.)
func TestAvayaDummyParticipantReplacedByUpdate(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately)
	src := newSRC(t, "tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	invite, _ := sippTemplate(t, "miarec-avaya-sbce-msg01-INVITE.txt")
	_, update := sippTemplate(t, "miarec-avaya-sbce-msg03-UPDATE.txt")
	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tcp"), Template: invite})
	if err != nil {
		t.Fatal(err)
	}
	sess := ts.SessionByCallID(call.CallID)
	if !slices.ContainsFunc(sess.Keys(), func(k matcher.Key) bool { return k.Value == "00001000071487015674" }) {
		t.Errorf("UCID from User-to-User missing: %v", sess.Keys())
	}
	if err := call.SendTones(ctx, []float64{440}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	res, err := call.Update(ctx, "application/rs-metadata", corpusCRLF(update))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("UPDATE with metadata: %v, %v", res, err)
	}
	if err := call.SendTones(ctx, []float64{440}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	doc := hangUp(ctx, t, ts, call, sess)
	var aors []string
	for _, p := range doc.Participants {
		aors = append(aors, p.AOR)
	}
	if !slices.Equal(aors, []string{"sip:13035381001@10.64.110.65", "sip:7204541001@10.64.110.32"}) {
		t.Errorf("participants %v, want the caller and the real far end, not the ASBCE placeholder", aors)
	}
	senders := map[string]string{} // label → participant id
	for _, ch := range doc.Channels {
		senders[ch.Label] = ch.ParticipantID
	}
	if senders["10"] != "b536ff63b7f3643d4d7b" || len(senders) != 1 {
		t.Errorf("channel senders %v", senders)
	}
	wav, err := recorder.ReadWAV(filepath.Join(ts.dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	if got := audiotest.TonePresentSamples(wav.Channels[0], wav.SampleRate, 440); got < 7000 {
		t.Errorf("%d samples of 440 Hz over the UPDATE, want about 8000", got)
	}
}

// TestStreamReplacedMidCall: the SBC removes one m-line (port 0) and adds another, with a new socket, SSRC
// and codec, as when a leg of the call is replaced. The new line takes the removed line's stream, so its
// audio goes on in the same channel of the same file.
func TestStreamReplacedMidCall(t *testing.T) {
	ts := newTestServer(t, ActivateImmediately)
	ctx, call, sess := recordingCall(t, ts)
	before := call.RemotePorts()
	if err := call.SendTones(ctx, []float64{440, 1000}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if res, err := call.ReplaceStream(ctx, 1, 8); err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE replacing a stream: %v, %v", res, err)
	}
	after := call.RemotePorts()
	if len(after) != 3 || after[0] != before[0] || after[1] != 0 || after[2] != before[1] {
		t.Fatalf("ports %v after the change (before %v): want the first kept, the removed line 0, the new line on the removed one's port", after, before)
	}
	if err := call.SendTones(ctx, []float64{440, 0, 1000}, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	doc := hangUp(ctx, t, ts, call, sess)
	if len(doc.Channels) != 2 || doc.Audio == nil || doc.Audio.Channels != 2 {
		t.Fatalf("channels %+v, audio %+v: want the two channels of the first offer", doc.Channels, doc.Audio)
	}
	if doc.Channels[1].Codec != "PCMA" {
		t.Errorf("second channel's codec %q, want PCMA (the replacing line's)", doc.Channels[1].Codec)
	}
	wav, err := recorder.ReadWAV(filepath.Join(ts.dir, doc.Audio.File))
	if err != nil {
		t.Fatal(err)
	}
	second := wav.Channels[doc.Channels[1].Index]
	if got := audiotest.TonePresentSamples(second, wav.SampleRate, 1000); got < 7000 {
		t.Errorf("%d samples of 1000 Hz in the second channel across the replacement, want about 8000", got)
	}
	if got := audiotest.TonePresentSamples(wav.Channels[doc.Channels[0].Index], wav.SampleRate, 440); got < 7000 {
		t.Errorf("%d samples of 440 Hz in the first channel, want about 8000", got)
	}
}
