package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siphook/siphook/audiohook"
	"github.com/siphook/siphook/audiohook/hooktest"
	"github.com/siphook/siphook/cti/genesys/genesystest"
	"github.com/siphook/siphook/matcher"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// The demo: the real server, in process, between the fakes the tests use: an SBC sending SIPREC (siptest),
// Genesys Cloud's notification service and REST API (genesystest) and its AudioHook client (hooktest). It
// plays a short story of the hybrid flow and leaves the server running with the web UI on its recordings.

// Demo people and secrets: fixed so the story reads the same every time.
const (
	demoAlice     = "3c1e0f8a-5d2b-4c67-9a1e-a11ce0000001"
	demoBob       = "7b9d2e4c-1f3a-4b58-8c6d-b0b000000002"
	demoOrg       = "5e1b7a2c-9d4f-4e3a-8b6c-0d3e0000d340"
	demoHookKey   = "ZGVtby1hcGkta2V5LXNpcGhvb2s="
	demoClientID  = "siphook-demo"
	demoCustomer  = "+15550100"
	demoContact   = "+18005550199"
	demoToneCall  = 440.0  // Hz on the customer's channel
	demoToneAgent = 1000.0 // Hz on the agent's channel
)

var demoHookSecret = []byte("siphook-demo-audiohook-secret-32")

type demoOptions struct {
	HTTP       string // listener of the UI, API and AudioHook
	Recordings string // "" → a new temporary directory
	Out        io.Writer
	Log        io.Writer
	Configure  func(*Config) // tests: changes to the demo's configuration
}

// demo is a running demo server and its fakes.
type demo struct {
	opts  demoOptions
	fake  *genesystest.Server
	app   *app
	src   *siptest.SRC
	cfg   Config
	start time.Time
	seq   uint16 // UCIDs handed out
	once  sync.Once
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "listener of the web UI, the API and AudioHook")
	dir := fs.String("recordings", "", "recordings directory (default: a new temporary directory)")
	exit := fs.Bool("exit", false, "stop after the story instead of serving the UI until interrupted")
	verbose := fs.Bool("v", false, "show the server's log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(logOut, nil))) // the SIP library's own log lines too
	d, err := startDemo(demoOptions{HTTP: *httpAddr, Recordings: *dir, Out: stdout, Log: logOut})
	if err != nil {
		return err
	}
	defer d.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.play(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if *exit {
		return nil
	}
	fmt.Fprintf(stdout, "\nServing the web UI at %s until interrupted (Ctrl-C).\n", d.url())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	<-signals
	return nil
}

// startDemo starts the fake Genesys Cloud, the server wired to it, and the fake SBC.
func startDemo(opts demoOptions) (*demo, error) {
	if opts.Recordings == "" {
		dir, err := os.MkdirTemp("", "siphook-demo-")
		if err != nil {
			return nil, err
		}
		opts.Recordings = dir
	}
	d := &demo{opts: opts, start: time.Now()}
	d.fake = genesystest.NewServer(genesystest.Options{})
	const secret = "siphook-demo-oauth-client-secret"
	d.fake.AddClient(demoClientID, secret)
	d.fake.AddUser(genesystest.User{ID: demoAlice, Name: "Alice Agent", Email: "alice@example.com"})
	d.fake.AddUser(genesystest.User{ID: demoBob, Name: "Bob Agent", Email: "bob@example.com"})

	cfg := defaultConfig()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Recorder.Dir = opts.Recordings
	cfg.AudioHook.Listen = opts.HTTP
	cfg.AudioHook.Organizations = []audiohook.Organization{{ID: demoOrg, APIKey: demoHookKey, ClientSecret: base64.StdEncoding.EncodeToString(demoHookSecret)}}
	cfg.Genesys.Name = "demo"
	cfg.Genesys.APIBase, cfg.Genesys.LoginBase = d.fake.APIBase(), d.fake.LoginBase()
	cfg.Genesys.ClientID, cfg.Genesys.ClientSecret = demoClientID, secret
	cfg.Genesys.Users = []string{"alice@example.com", "bob@example.com"}
	cfg.Shutdown.DrainTimeout = 0
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	cfg.resolveDefaults()
	if err := cfg.Validate(); err != nil {
		d.fake.Close()
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	d.cfg = cfg
	var err error
	if d.app, err = startApp(cfg, slog.New(slog.NewTextHandler(opts.Log, nil)), prometheus.NewRegistry()); err != nil {
		d.fake.Close()
		return nil, err
	}
	if d.src, err = siptest.NewSRC("tcp"); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *demo) url() string { return "http://" + d.app.hook.Addr() + "/" }

// stop ends the server and the fakes; safe to call twice.
func (d *demo) stop() {
	d.once.Do(func() {
		if d.src != nil {
			d.src.Close()
		}
		if d.app != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			d.app.stop(ctx)
		}
		d.fake.Close()
	})
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.opts.Out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// play runs the story, then lists the recordings.
func (d *demo) play(ctx context.Context) error {
	fmt.Fprintf(d.opts.Out, "siphook demo: the real server between a fake SBC (SIPREC), a fake Genesys Cloud (CTI) and its AudioHook client\n"+
		"  web UI and API  %s\n  recordings      %s\n\n", d.url(), d.cfg.Recorder.Dir)
	if err := d.waitFor(ctx, "the CTI feed to connect", func() bool { return sum(d.fake.Stats().LiveSockets) > 0 }); err != nil {
		return err
	}
	d.say("CTI: following Alice Agent and Bob Agent on the (fake) Genesys Cloud notification service")
	for i, step := range []struct {
		title string
		play  func(context.Context) error
	}{
		{"Inbound call over SIPREC, matched by UCID, with a hold", d.inbound},
		{"Outbound call over SIPREC, matched by x-inin-cnv", d.outbound},
		{"Inbound call over AudioHook, matched by conversationId", d.audioHook},
		{"A consult: the consult leg is not recorded", d.consult},
		{"A SIPREC session no agent call ever claims", d.unmatched},
	} {
		d.say("%d/5 %s", i+1, step.title)
		if err := step.play(ctx); err != nil {
			return fmt.Errorf("%s: %w", step.title, err)
		}
	}
	return d.listRecordings(ctx)
}

// nextUCID is a fresh Avaya UCID and the UUI an SBC and Genesys carry it in.
func (d *demo) nextUCID() (u matcher.UCID, uui string) {
	d.seq++
	u = matcher.UCID{Node: 71, Seq: 2520 + d.seq, Time: uint32(time.Now().Unix())}
	// FA08: the UCID's 8 octets; C814: the same as 20 ASCII digits (what Avaya and Genesys put in UUI).
	return u, "FA08" + u.Hex() + "C814" + strings.ToUpper(hex.EncodeToString([]byte(u.String())))
}

func (d *demo) inbound(ctx context.Context) error {
	u, uui := d.nextUCID()
	c := d.fake.InboundCall(genesystest.UUI(uui), genesystest.ANI(demoCustomer), genesystest.DNIS(demoContact),
		genesystest.CustomerName("Carol Customer")).IVR()
	call, err := d.invite(ctx, demoInvite{uui: uui, ucid: u, customer: demoCustomer, name: "Carol Customer"})
	if err != nil {
		return err
	}
	d.say("    the customer is in the IVR; the SBC's SIPREC session is answered a=inactive, waiting for an agent (UCID %s)", u)
	c.Answer(demoAlice)
	if err := expectDirection(ctx, call, "recvonly"); err != nil {
		return err
	}
	d.say("    Alice answers: the CTI event carries the UCID, siphook re-INVITEs a=recvonly and records")
	call.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, 2*time.Second)
	c.Hold(demoAlice)
	if err := expectDirection(ctx, call, "inactive"); err != nil {
		return err
	}
	d.say("    Alice puts the customer on hold: the recording pauses (a=inactive)")
	call.SendTones(ctx, []float64{2000, 2000}, 500*time.Millisecond) // on hold: must not be recorded
	c.Resume(demoAlice)
	if err := expectDirection(ctx, call, "recvonly"); err != nil {
		return err
	}
	call.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, time.Second)
	d.say("    resumed and recorded again; the customer hangs up")
	c.CustomerHangup()
	return errors.Join(c.Err(), call.Bye(ctx))
}

func (d *demo) outbound(ctx context.Context) error {
	c := d.fake.OutboundCall(demoBob, genesystest.ANI(demoContact), genesystest.DNIS("+15550123")).RemoteAnswer()
	call, err := d.invite(ctx, demoInvite{conversation: c.ID(), outbound: true, customer: "+15550123", name: "Erin Customer"})
	if err != nil {
		return err
	}
	if err := expectDirection(ctx, call, "recvonly"); err != nil {
		return err
	}
	d.say("    Bob dials out; the SBC's metadata carries the conversation id %s: matched and recording", c.ID())
	call.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, 1500*time.Millisecond)
	c.AgentHangup(demoBob)
	return errors.Join(c.Err(), call.Bye(ctx))
}

func (d *demo) audioHook(ctx context.Context) error {
	c := d.fake.InboundCall(genesystest.ANI("+15550142"), genesystest.DNIS(demoContact)).Answer(demoAlice)
	hook, err := hooktest.Dial(ctx, hooktest.Config{URL: "ws://" + d.app.hook.Addr() + "/audiohook", APIKey: demoHookKey,
		ClientSecret: demoHookSecret, OrganizationID: demoOrg, ConversationID: c.ID(), PingInterval: -1,
		Participant: audiohook.Participant{ID: "0f6a3f8e-6b1c-4d2a-9e5f-c0570e000042", ANI: "tel:+15550142", ANIName: "Dan Customer", DNIS: "tel:" + demoContact}})
	if err != nil {
		return err
	}
	d.say("    Genesys opens an AudioHook WebSocket for conversation %s (signed; starts paused)", c.ID())
	if err := d.waitFor(ctx, "the matcher to resume the AudioHook session", func() bool { return !hook.Paused() }); err != nil {
		return err
	}
	d.say("    matched by conversationId: resumed, recording stereo (external 440 Hz, internal 1000 Hz)")
	if err := hook.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, 1500*time.Millisecond, 0, true); err != nil {
		return err
	}
	c.CustomerHangup()
	return errors.Join(c.Err(), hook.Close(ctx, "end"))
}

func (d *demo) consult(ctx context.Context) error {
	u, uui := d.nextUCID()
	c := d.fake.InboundCall(genesystest.UUI(uui), genesystest.ANI("+15550177"), genesystest.DNIS(demoContact),
		genesystest.CustomerName("Frank Customer")).Answer(demoAlice)
	consultInvite := demoInvite{uui: uui, ucid: u, customer: "+15550177", name: "Frank Customer"}
	call, err := d.invite(ctx, consultInvite)
	if err != nil {
		return err
	}
	if err := expectDirection(ctx, call, "recvonly"); err != nil {
		return err
	}
	call.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, time.Second)
	c.ConsultStart(demoAlice, demoBob)
	if err := expectDirection(ctx, call, "inactive"); err != nil {
		return err
	}
	d.say("    Alice consults Bob: the customer is held and the customer's recording pauses")
	leg, err := d.invite(ctx, consultInvite)
	if err != nil {
		return err
	}
	legID := d.app.sip.SessionByCallID(leg.CallID).ID()
	if err := d.waitFor(ctx, "the consult leg matched", func() bool {
		a, ok := d.app.match.Session(legID)
		return ok && a.ConversationID == c.ID()
	}); err != nil {
		return err
	}
	d.say("    the SBC records the consult leg too: matched to the conversation, but kept a=inactive (a consult is not recorded)")
	call.SendTones(ctx, []float64{2000, 2000}, 500*time.Millisecond) // Alice and Bob talking: not in any recording
	c.ConsultCancel()
	if err := expectDirection(ctx, call, "recvonly"); err != nil {
		return err
	}
	call.SendTones(ctx, []float64{demoToneCall, demoToneAgent}, time.Second)
	d.say("    the consult ends; back to the customer, recording again")
	c.CustomerHangup()
	return errors.Join(c.Err(), leg.Bye(ctx), call.Bye(ctx))
}

func (d *demo) unmatched(ctx context.Context) error {
	u, uui := d.nextUCID()
	call, err := d.invite(ctx, demoInvite{uui: uui, ucid: u, customer: "+15550188", name: "Gina Customer"})
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	d.say("    no tracked agent is on a call with UCID %s: the session stays a=inactive and its record says why", u)
	return call.Bye(ctx)
}

// listRecordings prints what the story left, once every document is final.
func (d *demo) listRecordings(ctx context.Context) error {
	var docs []*recorder.Document
	if err := d.waitFor(ctx, "the recordings to be finalised", func() bool {
		docs = readDocuments(d.cfg.Recorder.Dir)
		return len(docs) == 6 && !slices.ContainsFunc(docs, func(doc *recorder.Document) bool { return doc.State == recorder.StateRecording })
	}); err != nil {
		return fmt.Errorf("%w (%d documents)", err, len(docs))
	}
	slices.SortFunc(docs, func(a, b *recorder.Document) int { return a.Start.Compare(b.Start) })
	fmt.Fprintf(d.opts.Out, "\n%d recordings in %s:\n", len(docs), d.cfg.Recorder.Dir)
	for _, doc := range docs {
		var agents []string
		how := "not matched: " + doc.Unmatched
		if doc.Call != nil {
			for _, a := range doc.Call.Agents {
				agents = append(agents, a.Name)
			}
			how = "matched by " + doc.Call.MatchedBy
			if doc.NotRecorded != "" {
				how += "; not recorded: " + doc.NotRecorded
			}
		}
		fmt.Fprintf(d.opts.Out, "  %s  %-9s  %-15s %5.1fs  %-22s %s\n    %s\n", doc.RecordingID, doc.Source, doc.State, doc.DurationSec,
			strings.Join(agents, ", "), how, d.url()+"#/recordings/"+doc.RecordingID)
	}
	return nil
}

// readDocuments reads every metadata document under dir.
func readDocuments(dir string) []*recorder.Document {
	var docs []*recorder.Document
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".json") {
			if err == nil && e.IsDir() && strings.HasPrefix(e.Name(), ".") && p != dir {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		var doc recorder.Document
		if err == nil && json.Unmarshal(b, &doc) == nil && doc.RecordingID != "" {
			docs = append(docs, &doc)
		}
		return nil
	})
	return docs
}

func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// expectDirection waits for our next re-INVITE and checks what it asks for.
func expectDirection(ctx context.Context, call *siptest.Call, want string) error {
	if _, err := call.WaitReinvite(ctx); err != nil {
		return fmt.Errorf("no re-INVITE to %s: %w", want, err)
	}
	if got := call.Directions(); got[0] != want {
		return fmt.Errorf("re-INVITE asks for %v, want %s", got, want)
	}
	return nil
}

// demoInvite is what varies between the demo's SIPREC INVITEs.
type demoInvite struct {
	uui          string       // UUI hex (no protocol discriminator); "" for none
	ucid         matcher.UCID // also in the metadata, as Oracle's apkt:ucid
	conversation string       // x-inin-cnv in the metadata (Genesys's header on outbound calls)
	customer     string       // the customer's number: the caller, or the callee of an outbound call
	name         string       // the customer's name
	outbound     bool
}

// invite sends an Oracle SBC style SIPREC INVITE (two streams, RFC 7865 metadata with apkt extensions) and
// checks it is answered inactive.
func (d *demo) invite(ctx context.Context, in demoInvite) (*siptest.Call, error) {
	caller, callee := in.customer, demoContact
	callerName, calleeName := in.name, "Contact centre"
	if in.outbound {
		caller, callee = demoContact, in.customer
		callerName, calleeName = calleeName, callerName
	}
	var headers, session, extension string
	if in.uui != "" {
		headers = "User-to-User: 04" + in.uui + ";encoding=hex\n"
		session = "<apkt:ucid>" + in.ucid.Hex() + "</apkt:ucid>\n"
	}
	if in.conversation != "" {
		extension = `<apkt:header label="x-inin-cnv"><value>` + in.conversation + "</value></apkt:header>\n"
	}
	tmpl, err := siptest.ParseTemplate(fmt.Sprintf(demoInviteFormat, headers, session, caller, callerName, extension, callee, calleeName))
	if err != nil {
		return nil, err
	}
	call, err := d.src.Invite(ctx, siptest.Dial{Target: d.app.sip.Addr("tcp"), Template: tmpl})
	if err != nil {
		return nil, err
	}
	if got := strings.Join(call.AnswerDirections, ","); got != "inactive,inactive" {
		return nil, fmt.Errorf("answered %s, want inactive until an agent is on the call", got)
	}
	return call, nil
}

// demoInviteFormat: headers, session extensions, caller number and name, caller extensions, callee number
// and name.
const demoInviteFormat = `INVITE sip:srs@siphook.demo SIP/2.0
Require: siprec
Supported: siprec, timer
Contact: <sip:sbc@127.0.0.1:5060;transport=tcp>;+sip.src
%sContent-Type: multipart/mixed; boundary=demo-boundary

--demo-boundary
Content-Type: application/sdp

v=0
o=- 4767439 382445 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 30000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=label:1
a=sendonly
m=audio 30002 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=label:2
a=sendonly

--demo-boundary
Content-Type: application/rs-metadata+xml
Content-Disposition: recording-session

<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording'>
<datamode>complete</datamode>
<session id="c2Vzc2lvbi1kZW1v">
<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
%s<apkt:callerOrig>true</apkt:callerOrig>
</extensiondata>
</session>
<participant id="cGFydHktY2FsbGVy" session="c2Vzc2lvbi1kZW1v">
<nameID aor="sip:%s@sbc.demo"><name>%s</name></nameID>
<send>c3RyZWFtLWNhbGxlcg==</send>
<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
<apkt:callingParty>true</apkt:callingParty>
%s</extensiondata>
</participant>
<participant id="cGFydHktY2FsbGVl" session="c2Vzc2lvbi1kZW1v">
<nameID aor="sip:%s@genesys.demo"><name>%s</name></nameID>
<send>c3RyZWFtLWNhbGxlZQ==</send>
<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
<apkt:callingParty>false</apkt:callingParty>
</extensiondata>
</participant>
<stream id="c3RyZWFtLWNhbGxlcg==" session="c2Vzc2lvbi1kZW1v"><label>1</label></stream>
<stream id="c3RyZWFtLWNhbGxlZQ==" session="c2Vzc2lvbi1kZW1v"><label>2</label></stream>
</recording>
--demo-boundary--
`

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
