package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// The hybrid flow end to end, in process: the real wiring of startApp between a fake SBC (siptest), a fake
// Genesys AudioHook client (hooktest) and a fake Genesys Cloud (genesystest).

const (
	agentA = "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc"
	agentB = "a1b2c3d4-0000-4000-8000-00000000000b"
	// The UUI of the Oracle template INVITE, as Genesys keeps it in uuiData (protocol discriminator removed).
	templateUUI  = "FA08004762C169FA480CC8143030303731323532383131373738303130313234"
	templateUCID = "00071252811778010124"
	hookOrg      = "d7934305-0972-4844-938e-9060eef73d05"
	hookKey      = "bWF0Y2gtdGVzdC1rZXk="
)

var hookSecret = []byte("0123456789abcdef0123456789abcdef")

type world struct {
	t    *testing.T
	fake *genesystest.Server
	app  *app
	cfg  Config
	reg  *prometheus.Registry
	src  *siptest.SRC
}

func newWorld(t *testing.T, mod func(*Config)) *world {
	t.Helper()
	fake := genesystest.NewServer(genesystest.Options{})
	t.Cleanup(fake.Close)
	fake.AddClient("siphook", "match-secret")
	fake.AddUser(genesystest.User{ID: agentA, Name: "Agent A", Email: "a@example.com"})
	fake.AddUser(genesystest.User{ID: agentB, Name: "Agent B", Email: "b@example.com"})

	cfg := defaultConfig()
	cfg.Log.Level = "warn"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = 42000, 42999
	cfg.Recorder.Dir = t.TempDir()
	cfg.AudioHook.Listen = "127.0.0.1:0"
	cfg.AudioHook.Organizations = []audiohook.Organization{{ID: hookOrg, APIKey: hookKey, ClientSecret: base64.StdEncoding.EncodeToString(hookSecret)}}
	cfg.Genesys.Name = "acme"
	cfg.Genesys.APIBase, cfg.Genesys.LoginBase = fake.APIBase(), fake.LoginBase()
	cfg.Genesys.ClientID, cfg.Genesys.ClientSecret = "siphook", "match-secret"
	cfg.Genesys.Users = []string{"a@example.com", "b@example.com"}
	if mod != nil {
		mod(&cfg)
	}
	cfg.resolveDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, fake: fake, cfg: cfg, reg: prometheus.NewRegistry()}
	logOut := io.Discard
	if os.Getenv("SIPHOOK_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	a, err := startApp(cfg, slog.New(slog.NewTextHandler(logOut, nil)), w.reg)
	if err != nil {
		t.Fatal(err)
	}
	w.app = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		a.stop(ctx)
	})
	w.src, err = siptest.NewSRC("tcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.src.Close)
	w.waitFor("the CTI feed", func() bool { return sum(fake.Stats().LiveSockets) > 0 })
	return w
}

func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) invite(ctx context.Context, template string) *siptest.Call {
	w.t.Helper()
	tmpl, err := siptest.LoadTemplate("../../testdata/siprec/" + template)
	if err != nil {
		w.t.Fatal(err)
	}
	call, err := w.src.Invite(ctx, siptest.Dial{Target: w.app.sip.Addr("tcp"), Template: tmpl})
	if err != nil {
		w.t.Fatal(err)
	}
	if d := strings.Join(call.AnswerDirections, ","); d != "inactive,inactive" {
		w.t.Fatalf("answered %s, want inactive until matched", d)
	}
	return call
}

// expectDirections waits for our next re-INVITE and checks the direction it asks for.
func expectDirections(ctx context.Context, t *testing.T, call *siptest.Call, want string) {
	t.Helper()
	if _, err := call.WaitReinvite(ctx); err != nil {
		t.Fatalf("no re-INVITE (want %s): %v", want, err)
	}
	if d := call.Directions(); d[0] != want {
		t.Fatalf("re-INVITE asks for %v, want %s", d, want)
	}
}

// documents returns the finished documents under the recordings directory, waiting until n exist.
func (w *world) documents(n int) []*recorder.Document {
	w.t.Helper()
	var docs []*recorder.Document
	w.waitFor("finished documents", func() bool {
		docs = nil
		filepath.WalkDir(w.cfg.Recorder.Dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, ".json") {
				return nil
			}
			b, _ := os.ReadFile(p)
			var doc recorder.Document
			if json.Unmarshal(b, &doc) == nil && doc.State != recorder.StateRecording {
				docs = append(docs, &doc)
			}
			return nil
		})
		return len(docs) >= n
	})
	return docs
}

func segmentStates(doc *recorder.Document) []string {
	if doc.Call == nil {
		return nil
	}
	var out []string
	for _, s := range doc.Call.Segments {
		out = append(out, s.State)
	}
	return out
}

// TestMatchInboundByUCID: the SIPREC session waits inactive until the agent connects on the conversation
// whose uuiData carries its UCID; hold pauses it; both orders of arrival.
func TestMatchInboundByUCID(t *testing.T) {
	for _, order := range []string{"SIPREC during IVR, then the agent", "agent first, then SIPREC"} {
		t.Run(order, func(t *testing.T) {
			w := newWorld(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			c := w.fake.InboundCall(genesystest.UUI(templateUUI)).IVR()
			var call *siptest.Call
			if order == "SIPREC during IVR, then the agent" {
				call = w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
				c.Answer(agentA)
			} else {
				c.Answer(agentA)
				w.waitFor("the call pending in the matcher", func() bool { _, calls := w.app.match.Pending(); return calls > 0 })
				call = w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
			}
			expectDirections(ctx, t, call, "recvonly")
			call.SendTones(ctx, []float64{440, 1000}, time.Second)
			c.Hold(agentA)
			expectDirections(ctx, t, call, "inactive")
			c.Resume(agentA)
			expectDirections(ctx, t, call, "recvonly")
			call.SendTones(ctx, []float64{440, 1000}, time.Second)
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			if err := call.Bye(ctx); err != nil {
				t.Fatal(err)
			}
			doc := w.documents(1)[0]
			if doc.Call == nil || doc.Call.ConversationID != c.ID() || doc.Call.MatchedBy != "ucid "+templateUCID || doc.Call.Tenant != "acme" {
				t.Fatalf("call section = %+v", doc.Call)
			}
			if got := segmentStates(doc); !slices.Equal(got[:3], []string{"ACTIVE", "HELD", "ACTIVE"}) {
				t.Errorf("segments %v", got)
			}
			if len(doc.Call.Agents) != 1 || doc.Call.Agents[0].UserID != agentA {
				t.Errorf("agents %+v", doc.Call.Agents)
			}
			wav, err := recorder.ReadWAV(filepath.Join(w.cfg.Recorder.Dir, doc.Audio.File))
			if err != nil {
				t.Fatal(err)
			}
			if got := audiotest.TonePresentSamples(wav.Channels[0], 8000, 440); got < 2*8000*90/100 {
				t.Errorf("440 Hz in %d samples, want the two recorded seconds", got)
			}
		})
	}
}

// TestMatchOutboundByConversationHeader: nothing in the INVITE matches; the conversation id arrives in a
// metadata re-INVITE (apkt:header x-inin-cnv) and the session is matched then.
func TestMatchOutboundByConversationHeader(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c := w.fake.OutboundCall(agentA).RemoteAnswer()
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	time.Sleep(300 * time.Millisecond) // the CTI event is in; nothing may happen yet (checked below)
	res, err := call.ReinviteWithMetadata(ctx, `<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording'>
<datamode>partial</datamode>
<participant id="gXnUad4yRbxolQd+Vq1Nrw==" session="tgfh2ko3QLdt5TI44tJGIg==">
<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
<apkt:header label="x-inin-cnv"><value>`+c.ID()+`</value></apkt:header>
</extensiondata>
</participant>
</recording>`)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("metadata re-INVITE: %v %v", res, err)
	}
	expectDirections(ctx, t, call, "recvonly")
	call.SendTones(ctx, []float64{440, 1000}, time.Second)
	call.Bye(ctx)
	doc := w.documents(1)[0]
	if doc.Call == nil || doc.Call.MatchedBy != "conversation_id "+c.ID() || doc.Call.Direction != "outbound" {
		t.Fatalf("call section = %+v", doc.Call)
	}
}

// TestMatchAudioHookAndSIPREC: one conversation recorded over SIPREC and AudioHook: two recordings that name
// each other.
func TestMatchAudioHookAndSIPREC(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c := w.fake.InboundCall(genesystest.UUI(templateUUI)).Answer(agentA)
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	expectDirections(ctx, t, call, "recvonly")
	hook, err := hooktest.Dial(ctx, hooktest.Config{URL: "ws://" + w.app.hook.Addr() + "/audiohook", APIKey: hookKey, ClientSecret: hookSecret,
		OrganizationID: hookOrg, ConversationID: c.ID(), PingInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !hook.Opened().StartPaused {
		t.Error("AudioHook opened without startPaused under CTI")
	}
	w.waitFor("the AudioHook session resumed by the matcher", func() bool { return !hook.Paused() })
	hook.SendTones(ctx, []float64{440, 1000}, time.Second, 200*time.Millisecond, false)
	call.SendTones(ctx, []float64{440, 1000}, time.Second)
	if err := hook.Close(ctx, "end"); err != nil {
		t.Fatal(err)
	}
	call.Bye(ctx)
	docs := w.documents(2)
	bySource := map[string]*recorder.Document{}
	for _, d := range docs {
		bySource[d.Source] = d
	}
	sipDoc, hookDoc := bySource["siprec"], bySource["audiohook"]
	if sipDoc == nil || hookDoc == nil || sipDoc.Call == nil || hookDoc.Call == nil {
		t.Fatalf("documents %+v", docs)
	}
	if sipDoc.Call.ConversationID != c.ID() || hookDoc.Call.ConversationID != c.ID() {
		t.Errorf("conversation ids %s / %s", sipDoc.Call.ConversationID, hookDoc.Call.ConversationID)
	}
	if !slices.Contains(hookDoc.Call.Related, sipDoc.RecordingID) || len(sipDoc.Call.Related) == 0 {
		t.Errorf("related: siprec %v, audiohook %v", sipDoc.Call.Related, hookDoc.Call.Related)
	}
}

// lastSegment waits until the matcher's last segment for a session has the given reason and agent.
func (w *world) lastSegment(sessionID, reason, agent string) {
	w.t.Helper()
	w.waitFor("segment "+reason+" with "+agent, func() bool {
		a, ok := w.app.match.Session(sessionID)
		if !ok || len(a.Segments) == 0 {
			return false
		}
		last := a.Segments[len(a.Segments)-1]
		return last.Reason == reason && slices.ContainsFunc(last.Agents, func(ag matcher.Agent) bool { return ag.UserID == agent })
	})
}

// sessionOf is the SIPREC session of a call (its id is what the matcher knows).
func (w *world) sessionOf(call *siptest.Call) string {
	w.t.Helper()
	s := w.app.sip.SessionByCallID(call.CallID)
	if s == nil {
		w.t.Fatal("no session for the call")
	}
	return s.ID()
}

// TestMatchBlindTransfer: a blind transfer keeps one recording with a segment per agent.
func TestMatchBlindTransfer(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c := w.fake.InboundCall(genesystest.UUI(templateUUI)).Answer(agentA)
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	expectDirections(ctx, t, call, "recvonly")
	id := w.sessionOf(call)
	c.BlindTransfer(agentA, agentB)
	w.lastSegment(id, "transfer", agentB)
	// The transfer's gap may have paused the media (hold policy); with B on the call it records again.
	w.waitFor("the media recording with B", func() bool { return call.Directions()[0] == "recvonly" })
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	call.Bye(ctx)
	doc := w.documents(1)[0]
	var agentsSeen []string
	for _, a := range doc.Call.Agents {
		agentsSeen = append(agentsSeen, a.UserID)
	}
	if !slices.Contains(agentsSeen, agentA) || !slices.Contains(agentsSeen, agentB) || doc.Audio == nil {
		t.Errorf("one recording with agents A and B expected: agents %v, audio %v", agentsSeen, doc.Audio)
	}
}

// TestMatchSecurePause: a secure (PCI) pause always pauses the media.
func TestMatchSecurePause(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c := w.fake.InboundCall(genesystest.UUI(templateUUI)).Answer(agentA)
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	expectDirections(ctx, t, call, "recvonly")
	c.SecurePause(true)
	expectDirections(ctx, t, call, "inactive")
	c.SecurePause(false)
	expectDirections(ctx, t, call, "recvonly")
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	call.Bye(ctx)
	var reasons []string
	for _, s := range w.documents(1)[0].Call.Segments {
		reasons = append(reasons, s.Reason)
	}
	if !slices.Contains(reasons, "secure_pause") {
		t.Errorf("segment reasons %v lack the secure pause", reasons)
	}
}

// TestUnmatched: no CTI for the session → inactive until BYE, and its record says why; CTI for a call whose
// media never comes → it expires from the pending table.
func TestUnmatched(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Matcher.CallTTL = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	call := w.invite(ctx, "oracle-sbc-2026-headers-template-INVITE.txt")
	time.Sleep(300 * time.Millisecond)
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	doc := w.documents(1)[0]
	if doc.State != recorder.StateNeverActivated || !strings.Contains(doc.Unmatched, templateUCID) {
		t.Errorf("unmatched record: state %q, unmatched %q", doc.State, doc.Unmatched)
	}

	w.fake.InboundCall().Answer(agentB) // no SIPREC session will ever carry its keys
	w.waitFor("the orphan call expired", func() bool {
		_, calls := w.app.match.Pending()
		return calls == 0 && counter(w.reg, "siphook_matcher_expired_calls_total") >= 1
	})
}

func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
