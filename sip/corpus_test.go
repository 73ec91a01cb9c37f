package sip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"go.yaml.in/yaml/v3"

	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// corpusCase is one entry of testdata/corpus.yaml: a sample of the SIPREC corpus and what siphook must do with
// it, written down by reading the sample. The file's header comment explains the fields.
type corpusCase struct {
	File         string            `yaml:"file"`
	Kind         string            `yaml:"kind"`
	Wrap         string            `yaml:"wrap"`
	Labels       []string          `yaml:"labels"`
	Activation   string            `yaml:"activation"`
	After        string            `yaml:"after"`
	Method       string            `yaml:"method"`
	Send         string            `yaml:"send"`
	Partial      string            `yaml:"partial"`
	Flow         string            `yaml:"flow"`
	Status       int               `yaml:"status"`
	Streams      *int              `yaml:"streams"`
	Codecs       []string          `yaml:"codecs"`
	Directions   []string          `yaml:"directions"`
	SRTP         bool              `yaml:"srtp"`
	Keys         []string          `yaml:"keys"`
	Participants []string          `yaml:"participants"`
	Left         []string          `yaml:"left"`
	State        string            `yaml:"state"`
	Document     string            `yaml:"document"`
	NoMetadata   bool              `yaml:"no_metadata"`
	Headers      map[string]string `yaml:"headers"`
	Tokens       []string          `yaml:"tokens"`
	CoveredBy    string            `yaml:"covered_by"`
	Why          string            `yaml:"why"`
}

func loadCorpusCases(t *testing.T) []*corpusCase {
	t.Helper()
	f, err := os.Open("testdata/corpus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var table struct {
		Samples []*corpusCase `yaml:"samples"`
	}
	if err := dec.Decode(&table); err != nil {
		t.Fatalf("testdata/corpus.yaml: %v", err)
	}
	return table.Samples
}

// checkCorpusTable reports every sample without an entry, every entry naming no sample and every entry that
// lacks what its kind needs.
func checkCorpusTable(t *testing.T, cases []*corpusCase) map[string]*corpusCase {
	t.Helper()
	files := corpusFiles(t)
	byFile := map[string]*corpusCase{}
	for _, c := range cases {
		if byFile[c.File] != nil {
			t.Errorf("corpus.yaml: %s has two entries", c.File)
		}
		byFile[c.File] = c
	}
	var missing, unknown []string
	for _, f := range files {
		if byFile[f] == nil {
			missing = append(missing, f)
		}
	}
	for _, c := range cases {
		if !slices.Contains(files, c.File) {
			unknown = append(unknown, c.File)
		}
	}
	if len(missing) > 0 {
		t.Errorf("corpus.yaml has no entry for %d samples: %s", len(missing), strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		t.Errorf("corpus.yaml names %d files that are not samples: %s", len(unknown), strings.Join(unknown, ", "))
	}
	tests := corpusTestNames(t)
	for _, c := range cases {
		bad := func(format string, args ...any) {
			t.Errorf("corpus.yaml %s: "+format, append([]any{c.File}, args...)...)
		}
		if strings.TrimSpace(c.Why) == "" {
			bad("no why")
		}
		if c.Kind != "reference" && c.Status == 0 {
			bad("no status")
		}
		if !slices.Contains([]string{"", "siprec", "plain", "abbrev"}, c.Wrap) {
			bad("wrap %q", c.Wrap)
		}
		if !slices.Contains([]string{"", string(ActivateImmediately), string(ActivateOnMatch)}, c.Activation) {
			bad("activation %q", c.Activation)
		}
		sends := func(name string) {
			if s := byFile[name]; s == nil || s.Kind != "invite" {
				bad("%q is not an invite entry", name)
			}
		}
		switch c.Kind {
		case "invite":
			if c.Status == 200 && (c.Streams == nil || len(c.Codecs) != *c.Streams) {
				bad("an accepted invite needs streams and one codec per stream")
			}
		case "in-dialog":
			sends(c.After)
			if !slices.Contains([]string{"INVITE", "UPDATE", "BYE"}, c.Method) {
				bad("method %q", c.Method)
			}
		case "srs":
			if !slices.Contains([]string{"answer", "reinvite", "reinvite-answer", "glare", "options-answer", "metadata-request"}, c.Flow) {
				bad("flow %q", c.Flow)
			}
			if c.Flow != "options-answer" {
				sends(c.Send)
			}
			if (c.Flow == "metadata-request") != (c.Partial != "") {
				bad("partial goes with flow metadata-request")
			}
		case "cancel":
			sends(c.Send)
		case "options":
		case "reference":
			if !tests[c.CoveredBy] {
				bad("covered_by %q is not a test of package sip", c.CoveredBy)
			}
		default:
			bad("kind %q", c.Kind)
		}
	}
	return byFile
}

// corpusTestNames are the Test functions of the package's test files.
func corpusTestNames(t *testing.T) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
	}
	return names
}

// TestCorpus sends every shipped SIPREC sample to a real server on loopback and checks the outcome written in
// testdata/corpus.yaml.
func TestCorpus(t *testing.T) {
	cases := loadCorpusCases(t)
	byFile := checkCorpusTable(t, cases)

	// Real SRCs send their 3–6 KiB SIPREC INVITEs over UDP in IP fragments; sipgo's client refuses anything
	// over 1300 bytes, so the fake SRC could not send them.
	mtu := sipgosip.UDPMTUSize
	sipgosip.UDPMTUSize = 1 << 16
	t.Cleanup(func() { sipgosip.UDPMTUSize = mtu }) // runs last: registered before the servers' cleanups
	hold := func(s *Server) {
		// A test seam: an INVITE carrying X-Corpus-Hold is not answered until it is cancelled.
		s.beforeAnswer = func(ctx context.Context, sess *Session) error {
			if sess.invite.GetHeader("X-Corpus-Hold") == nil {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		}
	}
	quiet := WithLogger(slog.New(slog.DiscardHandler)) // CORPUS_LOG=1 keeps the servers' logs
	if os.Getenv("CORPUS_LOG") != "" {
		quiet = WithLogger(slog.Default())
	}
	r := &corpusRun{
		cases: byFile,
		servers: map[Activation]*testServer{
			ActivateImmediately: newTestServer(t, ActivateImmediately, quiet, hold),
			ActivateOnMatch:     newTestServer(t, ActivateOnMatch, quiet, hold),
		},
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("corpus-src"))
	if err != nil {
		t.Fatal(err)
	}
	if r.raw, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1")); err != nil {
		t.Fatal(err)
	}

	t.Run("sample", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.File, func(t *testing.T) {
				t.Parallel()
				r.run(t, c)
			})
		}
	})

	for _, ts := range r.servers {
		waitFor(t, "sessions to end", func() bool { return ts.Sessions() == 0 })
		if free, size := ts.media.Ports().Free(), ts.media.Ports().Size(); free != size {
			t.Errorf("%s server: ports leaked: %d of %d free", ts.cfg.Activation, free, size)
		}
	}
	t.Logf("%s", r.summary())
	if dup := corpusDuplicates(t, r.servers); len(dup) > 0 {
		// sipgo forgets the INVITE transaction once the dialog ends; a retransmission still queued must not
		// reach onInvite as a new call (Server.endedLately).
		t.Errorf("%d INVITE retransmissions were admitted as second sessions: %v", len(dup), dup)
	}
	for _, ts := range r.servers {
		ts.stop()
	}
	ua.Close() // goroutines left behind are caught by TestMain once every cleanup has run
}

// corpusDuplicates lists the Call-IDs with more than one recording document, with each document's end reason.
func corpusDuplicates(t *testing.T, servers map[Activation]*testServer) []string {
	reasons := map[string][]string{}
	for _, ts := range servers {
		for _, doc := range corpusDocuments(t, ts.dir) {
			id := doc.Session["sip_call_id"]
			reasons[id] = append(reasons[id], doc.Session["end_reason"])
		}
	}
	var dup []string
	for callID, r := range reasons {
		if len(r) > 1 {
			slices.Sort(r)
			dup = append(dup, callID+" ("+strings.Join(r, ", ")+")")
		}
	}
	slices.Sort(dup)
	return dup
}

type corpusRun struct {
	cases   map[string]*corpusCase
	servers map[Activation]*testServer
	raw     *sipgo.Client // sends the in-dialog and out-of-dialog requests the fake SRC cannot

	mu      sync.Mutex
	results []corpusResult
}

type corpusResult struct {
	c      *corpusCase
	status int // the final response seen, 0 if none
	keys   []string
	failed bool
}

func (r *corpusRun) server(c *corpusCase) *testServer {
	if c.Activation == string(ActivateOnMatch) {
		return r.servers[ActivateOnMatch]
	}
	return r.servers[ActivateImmediately]
}

func (r *corpusRun) run(t *testing.T, c *corpusCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := corpusResult{c: c}
	defer func() { // also after t.Fatal
		res.failed = t.Failed()
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
	}()
	switch c.Kind {
	case "invite":
		res.status, res.keys = r.invite(ctx, t, c)
	case "in-dialog":
		res.status, res.keys = r.inDialog(ctx, t, c)
	case "srs":
		res.status = r.srs(ctx, t, c)
	case "options":
		res.status = r.options(ctx, t, c, nil)
	case "cancel":
		res.status = r.cancel(ctx, t, c)
	case "reference":
		t.Logf("not run: %s", c.Why)
	}
}

// invite sends a sample as a new INVITE and checks the answer, the session and its final document.
func (r *corpusRun) invite(ctx context.Context, t *testing.T, c *corpusCase) (int, []string) {
	ts := r.server(c)
	tmpl := corpusTemplate(t, c)
	src := newSRC(t, "udp")
	call, err := corpusInvite(ctx, src, siptest.Dial{Target: ts.Addr("udp"), Template: tmpl})
	if err != nil {
		return corpusRefused(t, ts, c, err), nil
	}
	sess := corpusSession(t, ts, call.Answer)
	if call.Answer.StatusCode != c.Status {
		t.Errorf("INVITE answered %d, want %d", call.Answer.StatusCode, c.Status)
		if err := call.Bye(ctx); err != nil {
			t.Errorf("BYE: %v", err)
		}
		corpusWaitEnd(ctx, t, sess)
		return call.Answer.StatusCode, nil
	}
	corpusCheckAnswer(t, c, corpusHeader(tmpl.Headers, "Content-Type"), []byte(tmpl.Body), call.Answer.Body())
	keys := corpusCheckKeys(t, c, sess)
	if err := call.Bye(ctx); err != nil {
		t.Errorf("BYE: %v", err)
	}
	corpusWaitEnd(ctx, t, sess)
	corpusCheckDocument(t, c, ts, sess.ID())
	return call.Answer.StatusCode, keys
}

// corpusInvite is src.Invite, retried while the SRC's UDP socket is not yet served: NewSRC starts ServeUDP in
// a goroutine, and an INVITE sent before it registered the socket makes sipgo bind the same address again.
func corpusInvite(ctx context.Context, src *siptest.SRC, d siptest.Dial) (*siptest.Call, error) {
	for {
		call, err := src.Invite(ctx, d)
		if !errors.Is(err, syscall.EADDRINUSE) || ctx.Err() != nil {
			return call, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// corpusRefused checks a refused INVITE: the code we expect and no session left behind.
func corpusRefused(t *testing.T, ts *testServer, c *corpusCase, err error) int {
	t.Helper()
	res := corpusResponse(err)
	if res == nil {
		t.Fatalf("INVITE: %v", err)
	}
	if res.StatusCode != c.Status {
		t.Errorf("INVITE answered %d %s (%s), want %d", res.StatusCode, res.Reason, corpusWarning(res), c.Status)
	}
	if ts.SessionByCallID(res.CallID().Value()) != nil {
		t.Errorf("refused INVITE left a session")
	}
	return res.StatusCode
}

// inDialog establishes a dialog with c.After and sends the sample inside it.
func (r *corpusRun) inDialog(ctx context.Context, t *testing.T, c *corpusCase) (int, []string) {
	ts := r.server(c)
	first := r.cases[c.After]
	tmpl := corpusTemplate(t, first)
	req := corpusInDialogRequest(t, c)
	src := newSRC(t, "udp")
	call, err := corpusInvite(ctx, src, siptest.Dial{Target: ts.Addr("udp"), Template: tmpl})
	if err != nil {
		refused := corpusResponse(err)
		if refused == nil || refused.StatusCode != first.Status {
			t.Fatalf("establishing INVITE %s: %v (want %d)", c.After, err, first.Status)
		}
		// No dialog was created: the request goes to a dialog the server does not know.
		d := corpusStrayDialog(r.raw, ts, refused)
		res, err := d.do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", req.method, err)
		}
		if res.StatusCode != c.Status {
			t.Errorf("%s outside any dialog answered %d, want %d", req.method, res.StatusCode, c.Status)
		}
		return res.StatusCode, nil
	}
	defer call.Close()
	sess := corpusSession(t, ts, call.Answer)
	// The fake SRC has sent its ACK; the request must not overtake it.
	waitFor(t, "session established", func() bool { return sess.State() != StateOffered })
	d := corpusDialogOf(r.raw, call, sess)
	res, err := d.do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.method, err)
	}
	if res.StatusCode != c.Status {
		t.Errorf("%s answered %d %s (%s), want %d", req.method, res.StatusCode, res.Reason, corpusWarning(res), c.Status)
	}
	if res.IsSuccess() && len(res.Body()) > 0 {
		corpusCheckAnswer(t, c, corpusHeader(req.headers, "Content-Type"), req.body, res.Body())
	} else if c.Streams != nil {
		t.Errorf("no SDP answer, want %d streams", *c.Streams)
	}
	if c.State != "" && req.method != sipgosip.BYE {
		if got := sess.State().String(); got != c.State {
			t.Errorf("session state after the %s = %s, want %s", req.method, got, c.State)
		}
	}
	keys := corpusCheckKeys(t, c, sess)
	if req.method != sipgosip.BYE {
		bye, err := d.do(ctx, corpusRequest{method: sipgosip.BYE})
		if err != nil || bye.StatusCode != 200 {
			t.Errorf("BYE: %v %v", bye, err)
		}
	}
	corpusWaitEnd(ctx, t, sess)
	corpusCheckDocument(t, c, ts, sess.ID())
	return res.StatusCode, keys
}

// srs produces a message the SRS sends (or a flow it takes part in) and compares it with the sample.
func (r *corpusRun) srs(ctx context.Context, t *testing.T, c *corpusCase) int {
	ts := r.server(c)
	sample := corpusSampleMessage(t, c.File)
	switch c.Flow {
	case "options-answer":
		return r.options(ctx, t, c, sample)
	case "metadata-request":
		return r.metadataRequest(ctx, t, c, sample)
	}
	src := newSRC(t, "udp")
	arrived, release := make(chan struct{}), make(chan struct{})
	var arrivedOnce, releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	if c.Flow == "glare" {
		src.OnReinvite = func(*siptest.Call, *sipgosip.Request) int {
			arrivedOnce.Do(func() { close(arrived) })
			<-release // our re-INVITE stays pending while the SRC sends its own
			return 200
		}
	}
	call, err := corpusInvite(ctx, src, siptest.Dial{Target: ts.Addr("udp"), Template: corpusTemplate(t, r.cases[c.Send])})
	if err != nil {
		t.Fatalf("INVITE %s: %v", c.Send, err)
	}
	defer call.Close()
	sess := corpusSession(t, ts, call.Answer)
	status := call.Answer.StatusCode
	switch c.Flow {
	case "answer":
		corpusCompareShape(t, c, sample, call.Answer, call.Answer.Body())
	case "reinvite", "reinvite-answer", "glare":
		activated := make(chan error, 1)
		go func() { activated <- sess.Activate(ctx) }()
		if c.Flow == "glare" {
			select {
			case <-arrived:
			case <-ctx.Done():
				t.Fatal("our re-INVITE never reached the SRC")
			}
			res, err := call.ReinviteWithMetadata(ctx, string(corpusMetadataOf(t, "synthetic/syn-03-oracle-like-reINVITE-metadata-adds-x-inin-cnv.txt")))
			if err != nil {
				t.Fatalf("SRC re-INVITE: %v", err)
			}
			status = res.StatusCode
			if first, _, _ := strings.Cut(string(corpusRead(t, c.File)), "\n"); !strings.HasPrefix(first, "SIP/2.0 "+strconv.Itoa(c.Status)+" ") {
				t.Errorf("corpus.yaml: the sample is %q, not a %d", first, c.Status)
			}
			if status != c.Status {
				t.Errorf("SRC re-INVITE during our re-INVITE answered %d, want %d", status, c.Status)
			}
			releaseOnce.Do(func() { close(release) })
		}
		if err := <-activated; err != nil {
			t.Fatalf("Activate: %v", err)
		}
		if c.Flow != "glare" {
			status = 200 // the SRC's answer to our re-INVITE
		}
		reinvite, err := call.WaitReinvite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch c.Flow {
		case "reinvite":
			corpusCompareShape(t, c, sample, reinvite, reinvite.Body())
			if before, after := corpusSDPVersion(t, call.Answer.Body()), corpusSDPVersion(t, reinvite.Body()); after <= before {
				t.Errorf("re-INVITE o= version %d, not above the answer's %d", after, before)
			}
		case "reinvite-answer":
			for i, l := range corpusSDPLines(t, sample.body) {
				if l.direction != "sendonly" {
					t.Errorf("corpus.yaml: sample m-line %d is %s, not the sendonly answer this flow stands for", i, l.direction)
				}
			}
			if got := strings.Join(call.Directions(), ","); got != "recvonly,recvonly" {
				t.Errorf("after the SRC's sendonly answer we are %s", got)
			}
			if got := sess.State().String(); got != c.State {
				t.Errorf("session state %s, want %s", got, c.State)
			}
			if err := call.SendTones(ctx, []float64{440, 1000}, 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := call.Bye(ctx); err != nil {
		t.Errorf("BYE: %v", err)
	}
	corpusWaitEnd(ctx, t, sess)
	if c.Flow == "reinvite-answer" {
		doc, _ := corpusDocument(t, ts, sess.ID(), "")
		if doc.State != c.Document {
			t.Errorf("document state %q, want %q", doc.State, c.Document)
		}
		for _, ch := range doc.Channels {
			if ch.Stats.Received == 0 {
				t.Errorf("channel %d (label %s) received no RTP after activation", ch.Index, ch.Label)
			}
		}
	}
	return status
}

// metadataRequest makes the SRS ask for a metadata snapshot: an SRC that allows UPDATE opens a session with
// c.Send's SDP and no metadata, then sends the partial document c.Partial, which has nothing to merge into.
// The SRC side is ours (the fake SRC does not take UPDATEs), so the SRS's request can be compared with the sample.
func (r *corpusRun) metadataRequest(ctx context.Context, t *testing.T, c *corpusCase, sample *corpusSample) int {
	ts := r.server(c)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("corpus-src-uas"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	uas, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	updates := make(chan *sipgosip.Request, 1)
	uas.OnUpdate(func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
		select {
		case updates <- req:
		default:
		}
		tx.Respond(sipgosip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go uas.ServeUDP(pc)

	tmpl := corpusTemplate(t, r.cases[c.Send])
	offer, err := ParseSIPRECBody(corpusHeader(tmpl.Headers, "Content-Type"), []byte(tmpl.Body))
	if err != nil || offer.SDP == nil {
		t.Fatalf("%s: no SDP: %v", c.Send, err)
	}
	host, port := ts.contactHostPort("udp")
	srs := sipgosip.Uri{Scheme: "sip", User: "srs", Host: host, Port: port}
	from := sipgosip.FromHeader{Address: sipgosip.Uri{Scheme: "sip", User: "src", Host: "127.0.0.1"}, Params: sipgosip.NewParams()}
	from.Params.Add("tag", sipgosip.GenerateTagN(16))
	contact := sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: "src", Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port},
		Params: sipgosip.NewParams()}
	contact.Params.Add("+sip.src", "")
	callID := "corpus-" + sipgosip.GenerateTagN(16) + "@127.0.0.1"
	// Over UDP the SRS sends in-dialog requests where the INVITE came from (not to the Contact): send from the
	// UAS's socket, as an SBC does.
	client, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(pc.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	d := &corpusDialog{client: client, target: srs, from: from, to: sipgosip.ToHeader{Address: srs, Params: sipgosip.NewParams()},
		callID: callID, contact: contact, cseq: 1}
	invite := corpusRequest{method: sipgosip.INVITE, body: offer.SDP, headers: [][2]string{
		{"Content-Type", typeSDP}, {"Require", "siprec"}, {"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"}}}
	res, err := d.do(ctx, invite)
	for errors.Is(err, syscall.EADDRINUSE) && ctx.Err() == nil { // ServeUDP has not registered the socket yet
		time.Sleep(10 * time.Millisecond)
		res, err = d.do(ctx, invite)
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("INVITE without metadata: %v %v", res, err)
	}
	sess := corpusSession(t, ts, res)
	waitFor(t, "session established", func() bool { return sess.State() != StateOffered })
	partial := corpusInDialogRequest(t, &corpusCase{File: c.Partial, Method: "UPDATE"})
	if res, err := d.do(ctx, partial); err != nil || res.StatusCode != 200 {
		t.Fatalf("UPDATE with partial metadata: %v %v", res, err)
	}
	status := 0
	select {
	case req := <-updates:
		status = 200 // answered by our UAS
		if method, _, _ := strings.Cut(string(corpusRead(t, c.File)), " "); string(req.Method) != method {
			t.Errorf("the SRS sent %s, the sample is a %s", req.Method, method)
		}
		corpusCompareShape(t, c, sample, req, nil)
	case <-time.After(10 * time.Second):
		t.Error("the SRS did not ask for a metadata snapshot")
	}
	if res, err := d.do(ctx, corpusRequest{method: sipgosip.BYE}); err != nil || res.StatusCode != 200 {
		t.Errorf("BYE: %v %v", res, err)
	}
	corpusWaitEnd(ctx, t, sess)
	return status
}

// options sends an out-of-dialog OPTIONS; with a sample of our answer, compares the answer's headers with it.
func (r *corpusRun) options(ctx context.Context, t *testing.T, c *corpusCase, sample *corpusSample) int {
	ts := r.server(c)
	host, port := ts.contactHostPort("udp")
	req := sipgosip.NewRequest(sipgosip.OPTIONS, sipgosip.Uri{Scheme: "sip", Host: host, Port: port})
	req.SetTransport("UDP")
	if sample == nil { // the sample is the OPTIONS itself: send its headers
		tmpl, err := siptest.ParseTemplate(corpusEnsureBody(corpusStripRequestLine(t, c, string(corpusRead(t, c.File)))))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range tmpl.Headers {
			req.AppendHeader(sipgosip.NewHeader(h[0], h[1]))
		}
	}
	res, err := r.raw.Do(ctx, req)
	if err != nil {
		t.Fatalf("OPTIONS: %v", err)
	}
	if res.StatusCode != c.Status {
		t.Errorf("OPTIONS answered %d, want %d", res.StatusCode, c.Status)
	}
	if sample != nil {
		corpusCompareShape(t, c, sample, res, nil)
	}
	return res.StatusCode
}

// cancel sends c.Send as an INVITE whose answer is held, cancels it and checks what is left.
func (r *corpusRun) cancel(ctx context.Context, t *testing.T, c *corpusCase) int {
	ts := r.server(c)
	src := newSRC(t, "udp")
	_, err := corpusInvite(ctx, src, siptest.Dial{Target: ts.Addr("udp"), Template: corpusTemplate(t, r.cases[c.Send]),
		CancelAfter: 50 * time.Millisecond, Headers: [][2]string{{"X-Corpus-Hold", "1"}}})
	res := corpusResponse(err)
	if res == nil {
		t.Fatalf("cancelled INVITE: %v", err)
	}
	if res.StatusCode != c.Status {
		t.Errorf("cancelled INVITE answered %d, want %d", res.StatusCode, c.Status)
	}
	callID := res.CallID().Value()
	waitFor(t, "cancelled session to end", func() bool { return ts.SessionByCallID(callID) == nil })
	doc, _ := corpusDocument(t, ts, "", callID)
	if doc.State != c.Document || doc.Session["end_reason"] != "cancelled" || doc.Audio != nil {
		t.Errorf("document state %q, end_reason %q, audio %+v; want %s, cancelled, no audio", doc.State, doc.Session["end_reason"], doc.Audio, c.Document)
	}
	return res.StatusCode
}

// ---- building what the fake SRC sends ------------------------------------------------------------------------

// corpusSippField matches sipp's [fieldN file="X.csv"] keyword (miarec Oracle template), filled with X.
var corpusSippField = regexp.MustCompile(`\[field\d+ file="([\w-]+)\.csv"\]`)

func corpusFill(b []byte) []byte {
	return corpusSippField.ReplaceAll(corpusFillSipp(b), []byte("$1"))
}

// corpusIsMessage tells whole messages from body-only samples (*-body*.txt, *.xml.txt).
func corpusIsMessage(name string) bool {
	return !strings.Contains(name, "-body") && !strings.HasSuffix(name, ".xml.txt")
}

// corpusEnsureBody gives a message without a body (and without the blank line) the blank line ParseTemplate
// needs.
func corpusEnsureBody(msg string) string {
	if !strings.Contains(msg, "\n\n") && !strings.Contains(msg, "\nv=0") {
		return strings.TrimRight(msg, "\n") + "\n\n"
	}
	return msg
}

// corpusStripRequestLine drops the request line of a message that is not an INVITE (ParseTemplate only
// recognises INVITE request lines) and checks its method.
func corpusStripRequestLine(t *testing.T, c *corpusCase, msg string) string {
	t.Helper()
	line, rest, _ := strings.Cut(msg, "\n")
	method, _, _ := strings.Cut(line, " ")
	if !strings.HasSuffix(strings.TrimSpace(line), "SIP/2.0") {
		t.Fatalf("%s: first line %q is not a request line", c.File, line)
	}
	if c.Method != "" && method != c.Method {
		t.Fatalf("corpus.yaml: %s is a %s, entry says %s", c.File, method, c.Method)
	}
	return rest
}

// corpusTemplate is the INVITE a sample stands for: the message itself, or its body wrapped as INDEX.md says.
func corpusTemplate(t *testing.T, c *corpusCase) *siptest.Template {
	t.Helper()
	switch {
	case c.Wrap == "abbrev":
		headers, ct, body := corpusAbbrev(t, c.File)
		return &siptest.Template{Headers: append(headers, [2]string{"Content-Type", ct}), Body: body, SRCContact: true}
	case corpusIsMessage(c.File):
		tmpl, err := siptest.ParseTemplate(corpusEnsureBody(string(corpusFill(corpusRead(t, c.File)))))
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		tmpl.Headers = corpusDropRoute(tmpl.Headers)
		return tmpl
	}
	ct, body, ok := corpusBody(t, c.File)
	if !ok {
		t.Fatalf("%s: no body", c.File)
	}
	if ct == typeMetadataXML {
		ct, body = corpusWrapMetadata(c.Labels, typeMetadataXML, body)
	}
	tmpl := &siptest.Template{Headers: [][2]string{{"Content-Type", ct}}, Body: string(corpusCRLF(body))}
	if c.Wrap != "plain" {
		tmpl.Headers = append(tmpl.Headers, [2]string{"Require", "siprec"})
		tmpl.SRCContact = true
	}
	return tmpl
}

// corpusDropRoute drops Route headers: they name the capture's proxies, and sipgo would send there.
func corpusDropRoute(headers [][2]string) [][2]string {
	return slices.DeleteFunc(headers, func(h [2]string) bool {
		return strings.EqualFold(h[0], "Route") || strings.EqualFold(h[0], "Record-Route")
	})
}

// corpusStandardSDP offers PCMU on one sendonly m-line per label.
func corpusStandardSDP(labels []string) string {
	if len(labels) == 0 {
		labels = []string{"1", "2"}
	}
	var b strings.Builder
	b.WriteString("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n")
	for i, l := range labels {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=label:%s\na=sendonly\n", 40000+2*i, l)
	}
	return b.String()
}

// corpusWrapMetadata puts a metadata document in a multipart body with the standard SDP (LF line ends).
func corpusWrapMetadata(labels []string, metadataType string, metadata []byte) (string, []byte) {
	return corpusTwoParts(corpusStandardSDP(labels), metadataType, metadata)
}

func corpusTwoParts(sdp, metadataType string, metadata []byte) (string, []byte) {
	const boundary = "corpus-boundary"
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s\nContent-Type: application/sdp\n\n%s\n--%s\nContent-Type: %s\nContent-Disposition: recording-session\n\n",
		boundary, sdp, boundary, metadataType)
	b.Write(bytes.TrimSpace(metadata))
	fmt.Fprintf(&b, "\n--%s--\n", boundary)
	return "multipart/mixed;boundary=" + boundary, b.Bytes()
}

// corpusAbbrev rebuilds an abbreviated documentation example (the AWS/RFC 7865 ones): its headers, and a real
// multipart body from its SDP lines ("..." elisions dropped, session lines added) and its XML.
func corpusAbbrev(t *testing.T, name string) (headers [][2]string, contentType, body string) {
	t.Helper()
	raw := string(corpusRead(t, name))
	head, rest, ok := strings.Cut(raw, "\n\n")
	if !ok {
		t.Fatalf("%s: no blank line after the headers", name)
	}
	tmpl, err := siptest.ParseTemplate(head + "\n\n")
	if err != nil {
		t.Fatal(err)
	}
	var sdp []string
	in := false
	for line := range strings.Lines(rest) {
		l := strings.TrimSpace(line)
		switch {
		case strings.EqualFold(l, "Content-Type: application/SDP"):
			in = true
		case in && l == "":
			in = false
		case in && strings.Trim(l, ".") != "":
			sdp = append(sdp, l)
		}
	}
	i := strings.Index(rest, "<?xml")
	if len(sdp) == 0 || i < 0 {
		t.Fatalf("%s: no SDP lines or no XML", name)
	}
	ct, b := corpusTwoParts("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"+strings.Join(sdp, "\n")+"\n",
		typeMetadata, []byte(rest[i:]))
	headers = slices.DeleteFunc(tmpl.Headers, func(h [2]string) bool { return strings.EqualFold(h[0], "Content-Type") })
	return headers, ct, string(corpusCRLF(b))
}

func corpusHeader(headers [][2]string, name string) string {
	for _, h := range headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// ---- in-dialog requests --------------------------------------------------------------------------------------

type corpusRequest struct {
	method  sipgosip.RequestMethod
	headers [][2]string // besides From, To, Call-ID, CSeq, Contact
	body    []byte
}

// corpusInDialogRequest is the in-dialog request a sample stands for.
func corpusInDialogRequest(t *testing.T, c *corpusCase) corpusRequest {
	t.Helper()
	req := corpusRequest{method: sipgosip.RequestMethod(c.Method)}
	switch {
	case c.Wrap == "abbrev":
		headers, ct, body := corpusAbbrev(t, c.File)
		req.headers, req.body = append(headers, [2]string{"Content-Type", ct}), []byte(body)
	case corpusIsMessage(c.File):
		msg := corpusStripRequestLine(t, c, string(corpusFill(corpusRead(t, c.File))))
		tmpl, err := siptest.ParseTemplate(corpusEnsureBody(msg))
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		req.headers, req.body = corpusDropRoute(tmpl.Headers), []byte(tmpl.Body)
	default:
		ct, body, ok := corpusBody(t, c.File)
		if !ok {
			t.Fatalf("%s: no body", c.File)
		}
		req.headers = [][2]string{{"Content-Type", ct}, {"Content-Disposition", "recording-session"}}
		req.body = corpusCRLF(body)
	}
	if len(bytes.TrimSpace(req.body)) == 0 {
		req.body = nil
	}
	return req
}

// corpusDialog sends requests in the fake SRC's dialog (it cannot send arbitrary ones itself), with a CSeq
// above any it used.
type corpusDialog struct {
	client  *sipgo.Client
	target  sipgosip.Uri
	from    sipgosip.FromHeader
	to      sipgosip.ToHeader
	callID  string
	contact sipgosip.ContactHeader
	cseq    uint32
}

func corpusDialogOf(client *sipgo.Client, call *siptest.Call, sess *Session) *corpusDialog {
	a := call.Answer
	contact := sipgosip.ContactHeader{Address: sess.remoteTarget(), Params: sipgosip.NewParams()}
	contact.Params.Add("+sip.src", "")
	return &corpusDialog{client: client, target: a.Contact().Address, from: *a.From(), to: *a.To(), callID: call.CallID,
		contact: contact, cseq: a.CSeq().SeqNo + 10}
}

// corpusStrayDialog addresses a dialog the server refused to create (To gets a tag of our own if the refusal
// had none).
func corpusStrayDialog(client *sipgo.Client, ts *testServer, refused *sipgosip.Response) *corpusDialog {
	host, port := ts.contactHostPort("udp")
	to := *refused.To()
	to.Params = to.Params.Clone()
	if !to.Params.Has("tag") {
		to.Params.Add("tag", "corpus-stray")
	}
	contact := sipgosip.ContactHeader{Address: sipgosip.Uri{Scheme: "sip", User: "src", Host: "127.0.0.1", Port: 9}, Params: sipgosip.NewParams()}
	return &corpusDialog{client: client, target: sipgosip.Uri{Scheme: "sip", User: "srs", Host: host, Port: port},
		from: *refused.From(), to: to, callID: refused.CallID().Value(), contact: contact, cseq: refused.CSeq().SeqNo + 10}
}

func (d *corpusDialog) build(method sipgosip.RequestMethod, cseq uint32) *sipgosip.Request {
	req := sipgosip.NewRequest(method, d.target)
	req.SetTransport("UDP")
	from, to := d.from, d.to
	callID := sipgosip.CallIDHeader(d.callID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sipgosip.CSeqHeader{SeqNo: cseq, MethodName: method})
	return req
}

// do sends one request and returns its final response; a 2xx to an INVITE is ACKed.
func (d *corpusDialog) do(ctx context.Context, r corpusRequest) (*sipgosip.Response, error) {
	d.cseq++
	req := d.build(r.method, d.cseq)
	if r.method != sipgosip.BYE {
		contact := d.contact
		req.AppendHeader(&contact)
	}
	for _, h := range r.headers {
		req.AppendHeader(sipgosip.NewHeader(h[0], h[1]))
	}
	req.SetBody(r.body)
	res, err := d.client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if r.method == sipgosip.INVITE && res.IsSuccess() {
		if !d.to.Params.Has("tag") { // the dialog starts here
			d.to = *res.To()
			if c := res.Contact(); c != nil {
				d.target = c.Address
			}
		}
		if err := d.client.WriteRequest(d.build(sipgosip.ACK, d.cseq)); err != nil {
			return res, fmt.Errorf("ACK: %w", err)
		}
	}
	return res, nil
}

// ---- checks --------------------------------------------------------------------------------------------------

func corpusResponse(err error) *sipgosip.Response {
	if e, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	if e, ok := errors.AsType[sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	return nil
}

func corpusWarning(res *sipgosip.Response) string {
	if h := res.GetHeader("Warning"); h != nil {
		return h.Value()
	}
	return "no Warning"
}

// corpusLine is one m-line of an SDP as the checks see it.
type corpusLine struct {
	media, proto, codec, direction, label string
	port                                  int
	crypto                                string // key-params of the first a=crypto
}

func corpusSDPLines(t *testing.T, body []byte) []corpusLine {
	t.Helper()
	sd, err := ParseSDP(body)
	if err != nil {
		t.Fatalf("SDP: %v\n%s", err, body)
	}
	static := map[string]string{"0": "PCMU", "8": "PCMA", "9": "G722", "18": "G729"}
	var lines []corpusLine
	for _, md := range sd.MediaDescriptions {
		l := corpusLine{media: md.MediaName.Media, proto: strings.Join(md.MediaName.Protos, "/"), port: md.MediaName.Port.Value, direction: "sendrecv"}
		names := map[string]string{}
		for _, a := range md.Attributes {
			switch a.Key {
			case "label":
				l.label = strings.TrimSpace(a.Value)
			case "sendonly", "recvonly", "sendrecv", "inactive":
				l.direction = a.Key
			case "rtpmap":
				pt, rest, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
				name, _, _ := strings.Cut(rest, "/")
				names[pt] = strings.ToUpper(name)
			case "crypto":
				if f := strings.Fields(a.Value); l.crypto == "" && len(f) >= 3 {
					l.crypto = f[2]
				}
			}
		}
		if len(md.MediaName.Formats) > 0 {
			f := md.MediaName.Formats[0]
			if l.codec = names[f]; l.codec == "" {
				l.codec = static[f]
			}
		}
		lines = append(lines, l)
	}
	return lines
}

func corpusSDPVersion(t *testing.T, body []byte) uint64 {
	t.Helper()
	sd, err := ParseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	return sd.Origin.SessionVersion
}

// corpusCheckAnswer compares our SDP answer with the offer and the expectations: one m-line per offered line,
// video refused, the recorded lines' count, codecs, directions and SRTP.
func corpusCheckAnswer(t *testing.T, c *corpusCase, offerType string, offerBody, answer []byte) {
	t.Helper()
	lines := corpusSDPLines(t, answer)
	if offer, err := ParseSIPRECBody(offerType, offerBody); err == nil && offer.SDP != nil {
		if sd, err := ParseSDP(offer.SDP); err == nil && len(sd.MediaDescriptions) != len(lines) {
			t.Errorf("answer has %d m-lines, the offer %d", len(lines), len(sd.MediaDescriptions))
		}
	}
	var recorded []corpusLine
	for _, l := range lines {
		switch {
		case l.media == "audio" && l.port != 0:
			recorded = append(recorded, l)
		case l.media == "video" && l.port != 0:
			t.Errorf("video m-line answered with port %d", l.port)
		}
	}
	field := func(f func(corpusLine) string) []string {
		var out []string
		for _, l := range recorded {
			out = append(out, f(l))
		}
		return out
	}
	if c.Streams != nil && len(recorded) != *c.Streams {
		t.Errorf("%d recorded m-lines (codecs %v), want %d:\n%s", len(recorded), field(func(l corpusLine) string { return l.codec }), *c.Streams, answer)
	}
	if got := field(func(l corpusLine) string { return l.codec }); c.Codecs != nil && !slices.Equal(got, c.Codecs) {
		t.Errorf("codecs %v, want %v", got, c.Codecs)
	}
	if got := field(func(l corpusLine) string { return l.direction }); c.Directions != nil && !slices.Equal(got, c.Directions) {
		t.Errorf("directions %v, want %v", got, c.Directions)
	}
	if c.SRTP {
		offered := map[string]bool{} // the SRC's keys: ours must be our own
		if offer, err := ParseSIPRECBody(offerType, offerBody); err == nil && offer.SDP != nil {
			for _, l := range corpusSDPLines(t, offer.SDP) {
				offered[l.crypto] = l.crypto != ""
			}
		}
		for i, l := range recorded {
			if l.proto != "RTP/SAVP" || l.crypto == "" || offered[l.crypto] {
				t.Errorf("recorded m-line %d answered %s, a=crypto %q; want RTP/SAVP with a key of our own", i, l.proto, l.crypto)
			}
		}
	}
}

// corpusKeyKind is the kind a written-down key has: 20 digits are a UCID, anything else a conversation id.
func corpusKeyKind(v string) string {
	if len(v) == 20 && strings.Trim(v, "0123456789") == "" {
		return "ucid"
	}
	return "conversation_id"
}

// corpusCheckKeys compares the session's matching keys with the expected ones (any order).
func corpusCheckKeys(t *testing.T, c *corpusCase, sess *Session) []string {
	t.Helper()
	var got, want []string
	var values []string
	for _, k := range sess.Keys() {
		got = append(got, string(k.Kind)+" "+k.Value)
		values = append(values, k.Value)
	}
	for _, v := range c.Keys {
		want = append(want, corpusKeyKind(v)+" "+v)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	return values
}

func corpusWaitEnd(ctx context.Context, t *testing.T, sess *Session) {
	t.Helper()
	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatalf("session %s did not end", sess.ID())
	}
}

// corpusDocument reads the final metadata document of a recording session, by recording id or else by the SIP
// Call-ID of its dialog.
func corpusDocument(t *testing.T, ts *testServer, id, callID string) (*recorder.Document, []byte) {
	t.Helper()
	docs := corpusDocuments(t, ts.dir)
	var found []string
	for path, doc := range docs {
		if id != "" && doc.RecordingID == id || id == "" && doc.Session["sip_call_id"] == callID {
			found = append(found, path)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one document for recording %q / Call-ID %q, found %v", id, callID, found)
	}
	raw, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return docs[found[0]], raw
}

// corpusDocuments reads every metadata document under dir, by path.
func corpusDocuments(t *testing.T, dir string) map[string]*recorder.Document {
	t.Helper()
	docs := map[string]*recorder.Document{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a document being replaced
		}
		var doc recorder.Document
		if json.Unmarshal(b, &doc) == nil {
			docs[path] = &doc
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// corpusSession is the session of the dialog an answer opened. (SessionByCallID is not enough: a retransmitted
// INVITE may have opened a second session with the same Call-ID, see TestCorpus.)
func corpusSession(t *testing.T, ts *testServer, answer *sipgosip.Response) *Session {
	t.Helper()
	id, err := sipgosip.DialogIDFromResponse(answer)
	if err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	sess := ts.sessions[id]
	if sess == nil {
		t.Fatal("answered INVITE has no session")
	}
	return sess
}

// corpusCheckDocument checks the final document: participants, keys, state, channels, refused metadata.
func corpusCheckDocument(t *testing.T, c *corpusCase, ts *testServer, id string) {
	t.Helper()
	doc, raw := corpusDocument(t, ts, id, "")
	var parties struct { // decoded here: "left" marks participants a later complete snapshot no longer lists
		Participants []struct {
			AOR  string `json:"aor"`
			Left bool   `json:"left"`
		} `json:"participants"`
	}
	if err := json.Unmarshal(raw, &parties); err != nil {
		t.Fatal(err)
	}
	var present, left []string
	for _, p := range parties.Participants {
		switch {
		case p.AOR == "":
		case p.Left:
			left = append(left, p.AOR)
		default:
			present = append(present, p.AOR)
		}
	}
	for _, cmp := range []struct {
		what      string
		got, want []string
	}{{"participants", present, c.Participants}, {"participants who left", left, c.Left}} {
		want := slices.Clone(cmp.want)
		slices.Sort(cmp.got)
		slices.Sort(want)
		if !slices.Equal(cmp.got, want) {
			t.Errorf("%s %q, want %q", cmp.what, cmp.got, want)
		}
	}
	for _, k := range c.Keys {
		if !slices.ContainsFunc(doc.Identifiers, func(id recorder.Identifier) bool { return id.Kind == corpusKeyKind(k) && id.Value == k }) {
			t.Errorf("key %s missing from the document's identifiers %+v", k, doc.Identifiers)
		}
	}
	wantState := c.Document
	if wantState == "" && ts.cfg.Activation == ActivateImmediately {
		wantState = "completed"
	}
	if wantState != "" && doc.State != wantState {
		t.Errorf("document state %q, want %q", doc.State, wantState)
	}
	if c.Kind == "invite" && c.Streams != nil && ts.cfg.Activation == ActivateImmediately && len(doc.Channels) != *c.Streams {
		t.Errorf("recording has %d channels, want %d", len(doc.Channels), *c.Streams)
	}
	if c.NoMetadata {
		if doc.Session["metadata_dialect"] != "" || doc.Session["metadata_session_id"] != "" || len(doc.Participants) > 0 {
			t.Errorf("metadata taken from a refused body: dialect %q, session id %q, participants %+v",
				doc.Session["metadata_dialect"], doc.Session["metadata_session_id"], doc.Participants)
		}
		for _, leak := range []string{strings.Repeat("a", 64), "root:", "&d;", "&ext;"} {
			if bytes.Contains(raw, []byte(leak)) {
				t.Errorf("document carries %q from the refused metadata", leak)
			}
		}
	}
}

// corpusSample is a sample message as the shape checks read it.
type corpusSample struct {
	headers map[string][]string // by lower-cased name
	body    []byte
}

func corpusSampleMessage(t *testing.T, name string) *corpusSample {
	t.Helper()
	raw := corpusRead(t, name)
	head, body, _ := bytes.Cut(raw, []byte("\n\n"))
	s := &corpusSample{headers: map[string][]string{}, body: body}
	for i, line := range strings.Split(string(head), "\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && i > 0 {
			k := strings.ToLower(strings.TrimSpace(n))
			s.headers[k] = append(s.headers[k], strings.TrimSpace(v))
		}
	}
	return s
}

// corpusMetadataOf returns the metadata document of a sample.
func corpusMetadataOf(t *testing.T, name string) []byte {
	t.Helper()
	ct, body, _ := corpusBody(t, name)
	got, err := ParseSIPRECBody(ct, body)
	if err != nil || got.Metadata == nil {
		t.Fatalf("%s: no metadata: %v", name, err)
	}
	return got.Metadata
}

type corpusHeaders interface {
	GetHeaders(name string) []sipgosip.Header
}

// corpusCompareShape compares a message of ours with the SRS sample it stands for: the direction and label of
// every audio m-line (when body is not nil), the texts named in c.Headers and the tokens of c.Tokens.
func corpusCompareShape(t *testing.T, c *corpusCase, sample *corpusSample, ours corpusHeaders, body []byte) {
	t.Helper()
	if body != nil {
		want, got := corpusSDPLines(t, sample.body), corpusSDPLines(t, body)
		if len(want) != len(got) {
			t.Errorf("%d m-lines, the sample has %d", len(got), len(want))
		}
		for i := range min(len(want), len(got)) {
			if got[i].direction != want[i].direction || got[i].label != want[i].label {
				t.Errorf("m-line %d: %s label %q, the sample has %s label %q", i, got[i].direction, got[i].label, want[i].direction, want[i].label)
			}
		}
	}
	values := func(name string) string {
		var vs []string
		for _, h := range ours.GetHeaders(name) {
			vs = append(vs, h.Value())
		}
		return strings.Join(vs, ", ")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		text := c.Headers[name]
		if !strings.Contains(strings.Join(sample.headers[strings.ToLower(name)], ", "), text) {
			t.Errorf("corpus.yaml: the sample's %s does not contain %q", name, text)
		}
		if got := values(name); !strings.Contains(got, text) {
			t.Errorf("our %s is %q, want it to contain %q as the sample's does", name, got, text)
		}
	}
	tokens := func(v string) []string {
		var out []string
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.ToLower(strings.TrimSpace(tok)); tok != "" {
				out = append(out, tok)
			}
		}
		return out
	}
	for _, name := range c.Tokens {
		want := tokens(strings.Join(sample.headers[strings.ToLower(name)], ","))
		if len(want) == 0 {
			t.Errorf("corpus.yaml: the sample has no %s", name)
		}
		got := tokens(values(name))
		for _, tok := range want {
			if !slices.Contains(got, tok) {
				t.Errorf("our %s %q lacks %q, which the sample advertises", name, values(name), tok)
			}
		}
	}
}

// summary is the one-line account of the run.
func (r *corpusRun) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var run, accepted, inDialog, reference, failed int
	refused := map[int]int{}
	keys := map[string]bool{}
	for _, res := range r.results {
		switch {
		case res.c.Kind == "reference":
			reference++
			continue
		case res.c.Kind == "in-dialog":
			inDialog++
		}
		run++
		if res.failed {
			failed++
		}
		switch {
		case res.status == 200:
			accepted++
		case res.status >= 300 && res.status == res.c.Status:
			refused[res.status]++
		}
		for _, k := range res.keys {
			keys[k] = true
		}
	}
	var codes []string
	total := 0
	for _, code := range slices.Sorted(maps.Keys(refused)) {
		codes = append(codes, fmt.Sprintf("%d×%d", code, refused[code]))
		total += refused[code]
	}
	return fmt.Sprintf("corpus summary: %d samples run (+%d reference only), %d accepted with 200, %d refused as expected (%s), %d in-dialog, %d not as expected, %d distinct keys %v",
		run, reference, accepted, total, strings.Join(codes, " "), inDialog, failed, len(keys), slices.Sorted(maps.Keys(keys)))
}
