package main

// The sipp scenarios shipped in testdata/siprec/sipp, run against the built binary as a third-party SRC
// would run them. One subtest per scenario (and variant); each gets its own server, ports and directory, and
// they run in parallel. Pauses that only set how long a call lasts (izi's 10 s to 5 min) are cut to 2 s, but
// izi's short test keeps its 35 s call, the longest.
//
//	scenario                                         server      what is checked
//	drachtio/uac_siprec_pcap.xml                     immediate   recvonly answer; the SRC's inactive re-INVITE is
//	                                                             answered inactive and noted as a hold; a_leg
//	                                                             carries the pcap's audio,
//	                                                             b_leg is silent (the 1-stream pcap feeds only the
//	                                                             first m-line); participants from the metadata
//	drachtio/uac_siprec_pcap2.xml                    immediate   patched Call-ID (see the case); a_leg audio; the
//	                                                             draft-namespace (tns:) metadata's participants
//	drachtio/uac_siprec_pcap_deny-E-C-Group.xml      immediate   patched (see the case): the source is not in
//	                                                             sip.admission.allow_sources → 403, nothing written
//	izi-siprec-loreste/siprec_quick_test.xml         immediate   sendrecv offer answered recvonly; one recording
//	izi-siprec-loreste/siprec_quick_test.xml         on-match    answered inactive; no CTI, so never activated: a
//	                                                             never_activated document and no WAV
//	izi-siprec-loreste/siprec_short_test.xml         immediate   the call outlives 64·T1 (35 s) with an ACK that
//	                                                             has no Contact nor Max-Forwards
//	izi-siprec-loreste/siprec_load_test.xml          immediate   5 calls at 5/s over UDP: 5 recordings
//	izi-siprec-loreste/siprec_load_test.xml          immediate   5 calls at 5/s over TCP, one socket per call (-t tn)
//	izi-siprec-loreste/siprec_with_media.xml         immediate   one recording (it sends no media)
//	izi-siprec-loreste/siprec_rtp_stream.xml         immediate   patched rtp_stream (see the case): a 1 kHz PCMU
//	                                                             tone, found in the WAV by content
//	izi-siprec-loreste/siprec_hold_resume.xml        immediate   answers recvonly → inactive (hold, c=0.0.0.0) →
//	                                                             recvonly (resume); the hold is in the document
//	izi-siprec-loreste/siprec_transfer.xml           immediate   the re-INVITE's new metadata is taken in (charlie; bob left)
//	project-checks/uac_oracle_like_inactive_         delayed     inactive answer, our recvonly re-INVITE, UUI UCID,
//	  reinvite.xml                                               both streams of the 2-stream pcap recorded; over
//	                                                             UDP (also TestSippOracleLikeFlow) and TCP
//
// Every case also checks that sipp saw its scenario through, and that the server logged no error; every
// case that records, that there is one final document per call, for its Call-ID, ended by the SRC's BYE,
// after an ACK the server took, completed with a WAV (never_activated without one under on-match).
//
// Not run (they are not clients of an SRS):
//
//	project-checks/uas_srs.xml                         a stand-in SRS (sipp playing the server) for checking
//	project-checks/uas_srs_inactive_then_reinvite.xml  drachtio's and the Oracle-like UAC scenarios without a
//	                                                   real SRS; siphook is the SRS here, so there is nothing for
//	                                                   them to test.
//
// Every scenario is run from a copy: absolute pcap paths point at ours, and the few patches a case needs are
// exact replacements that fail the test when the shipped scenario no longer contains what they replace.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
	"github.com/siphook/siphook/recorder"
)

// sippCase is one run of a shipped scenario.
type sippCase struct {
	name       string   // subtest name
	scenario   string   // under testdata/siprec/sipp
	activation string   // the sip.activation the scenario needs
	env        []string // extra server environment
	args       []string // extra sipp arguments: transport, rate, limit
	calls      int      // calls placed (-m); default 1
	edits      []edit   // patches to the copy; $SIPP is the scenarios' directory, $WORK the run's directory
	// maxPause shortens longer <pause>s: call durations meant for load runs, not for what is checked.
	maxPause time.Duration
	pcap     bool // plays a pcap: sipp needs CAP_NET_RAW
	refused  bool // every INVITE is refused: nothing is recorded
	setup    func(t *testing.T, work string)
	check    func(t *testing.T, r *sippRun)
}

// edit replaces every occurrence of old in a scenario copy; old must occur.
type edit struct{ old, new string }

// sippRun is what a case left behind.
type sippRun struct {
	srv  *server
	msgs []sipMessage             // what sipp sent and received (-trace_msg)
	docs []*recorder.Document     // the final documents, one per recorded call
	wavs map[string]*recorder.WAV // by recording id
}

var sippCases = []sippCase{
	{
		name: "drachtio/uac_siprec_pcap", scenario: "drachtio/uac_siprec_pcap.xml", activation: "immediate", pcap: true,
		edits: []edit{{"/tmp/pcap/g711a.pcap", "$SIPP/drachtio/pcap/g711a.pcap"}},
		check: func(t *testing.T, r *sippRun) {
			// The SRC's re-INVITE goes inactive: an inactive offer must get an inactive answer (RFC 3264 §6.1),
			// and the call is on hold from there to the BYE.
			r.wantAnswers(t, map[int]string{1: "recvonly,recvonly", 2: "inactive,inactive"})
			doc := r.docs[0]
			wantSRCHolds(t, doc, 1)
			wantAORs(t, doc, "sip:6001@localhost", "sip:101@localhost")
			// The pcap holds one stream to the first m-line's port; the second m-line gets nothing. The pcap
			// plays on (asynchronously) after the re-INVITE that declared it inactive, and what arrives is
			// recorded.
			r.wantAudio(t, doc, map[string]bool{"a_leg": true, "b_leg": false}, 80)
		},
	},
	{
		name: "drachtio/uac_siprec_pcap2", scenario: "drachtio/uac_siprec_pcap2.xml", activation: "immediate", pcap: true,
		edits: []edit{
			{"/tmp/pcap/g711a.pcap", "$SIPP/drachtio/pcap/g711a.pcap"},
			// The scenario sends Call-ID "[call_id]-XX", but sipp maps every response to its call by sipp's own
			// Call-ID: it discards the 100 and the 200 ("can't be mapped to a known SIPp call") and retransmits
			// the INVITE until it gives up, against any UAS.
			{"Call-ID: [call_id]-XX", "Call-ID: [call_id]"},
		},
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly,recvonly"})
			doc := r.docs[0]
			wantAORs(t, doc, "daveh@216.110.2.220", "+16177232500@216.110.2.220")
			r.wantAudio(t, doc, map[string]bool{"a_leg": true, "b_leg": false}, 80)
		},
	},
	{
		// drachtio's verifier denies callers whose AOR contains "deny"; siphook has no per-participant policy
		// (it records every SIPREC session its sources send), its refusal is by source address. So the source
		// is left out of sip.admission.allow_sources and the scenario must be refused. As shipped, sipp will not
		// load it ("<recv> before <send> sequence without a mandatory message": every response it waits for is
		// optional), so the copy waits for the 403, and its ACK (an ACK to a non-2xx belongs to the INVITE
		// transaction, RFC 3261 §17.1.1.3) takes the INVITE's branch instead of a new one, which would leave
		// the 403 retransmitted until Timer H.
		name: "drachtio/uac_siprec_pcap_deny-E-C-Group", scenario: "drachtio/uac_siprec_pcap_deny-E-C-Group.xml",
		activation: "immediate", refused: true,
		env: []string{"SIPHOOK_SIP_ADMISSION_ALLOW_SOURCES=192.0.2.0/24"},
		edits: []edit{
			{`<recv response="200" rtd="true" crlf="true" optional="true">`, `<recv response="403" rtd="true" crlf="true">`},
			{"ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n",
				"ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-4]\n"},
		},
		check: func(t *testing.T, r *sippRun) {
			if n := r.srv.countLog("sip request refused", func(l logLine) bool { return l.Code == 403 && l.Method == "INVITE" }); n != 1 {
				t.Errorf("server logged %d INVITE refusals with 403, want 1", n)
			}
		},
	},
	{
		name: "izi/siprec_quick_test", scenario: "izi-siprec-loreste/siprec_quick_test.xml", activation: "immediate",
		maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly"}) // to a sendrecv offer
			wantAORs(t, r.docs[0], "sip:caller1@example.com", "sip:callee1@example.com")
		},
	},
	{
		// No CTI is configured: the session waits, answered inactive, until its BYE.
		name: "izi/siprec_quick_test/on-match", scenario: "izi-siprec-loreste/siprec_quick_test.xml", activation: "on-match",
		maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "inactive"})
			if len(r.docs[0].Events) != 0 {
				t.Errorf("events %+v, want none", r.docs[0].Events)
			}
		},
	},
	{
		name: "izi/siprec_load_test/udp", scenario: "izi-siprec-loreste/siprec_load_test.xml", activation: "immediate",
		calls: 5, args: []string{"-r", "5", "-l", "5"}, maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) { r.wantTransport(t, "UDP") },
	},
	{
		// The README's high-concurrency mode: one TCP connection per call. sipp's default -max_socket (50000)
		// exceeds common open-file limits and makes it refuse to start.
		name: "izi/siprec_load_test/tcp", scenario: "izi-siprec-loreste/siprec_load_test.xml", activation: "immediate",
		calls: 5, args: []string{"-r", "5", "-l", "5", "-t", "tn", "-max_socket", "64"}, maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) { r.wantTransport(t, "TCP") },
	},
	{
		// Despite its name it sends no media. Its call lasts 5 minutes as shipped.
		name: "izi/siprec_with_media", scenario: "izi-siprec-loreste/siprec_with_media.xml", activation: "immediate",
		maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly"})
			wantAORs(t, r.docs[0], "sip:caller1@example.com", "sip:callee1@example.com")
		},
	},
	{
		// rtp_stream="g711a,8000,20,5000" (codec, rate, ptime, duration, as meant) is not sipp's syntax,
		// "file,loops,payload type": sipp stops at once on "Unknown rtp payload type 20". The copy streams 5 s
		// of a 1 kHz tone once. As PCMU (0), not PCMA: the offer lists 0 8, we answer 0, and the offerer must
		// send a format the answer lists (RFC 3264 §7).
		name: "izi/siprec_rtp_stream", scenario: "izi-siprec-loreste/siprec_rtp_stream.xml", activation: "immediate",
		edits: []edit{{`rtp_stream="g711a,8000,20,5000"`, `rtp_stream="$WORK/tone-1khz.pcmu,1,0"`}},
		setup: func(t *testing.T, work string) {
			pcm := audiotest.Sine(1000, 0.5, 8000, 0, 5*8000)
			ulaw := make([]byte, len(pcm))
			for i, s := range pcm {
				ulaw[i] = g711.EncodeULaw(s)
			}
			if err := os.WriteFile(filepath.Join(work, "tone-1khz.pcmu"), ulaw, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly"})
			doc := r.docs[0]
			if len(doc.Channels) != 1 || doc.Channels[0].Codec != "PCMU" || doc.Channels[0].Stats.Received < 200 {
				t.Fatalf("channels %+v, want one PCMU channel with ~250 packets", doc.Channels)
			}
			const want = 4 * 8000 // of the 5 s sent; the recording starts and stops with the call
			if got := audiotest.TonePresentSamples(r.wavs[doc.RecordingID].Channels[0], 8000, 1000); got < want {
				t.Errorf("1 kHz present in %d samples, want >= %d", got, want)
			}
		},
	},
	{
		name: "izi/siprec_hold_resume", scenario: "izi-siprec-loreste/siprec_hold_resume.xml", activation: "immediate",
		maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly", 2: "inactive", 3: "recvonly"})
			doc := r.docs[0]
			wantSRCHolds(t, doc, 1)
			if p := doc.Pauses[0]; p.End == nil || p.DurationSec < 1.5 || p.DurationSec > 5 {
				t.Errorf("hold %+v, want the 2 s between the hold and resume re-INVITEs", p)
			}
		},
	},
	{
		name: "izi/siprec_transfer", scenario: "izi-siprec-loreste/siprec_transfer.xml", activation: "immediate",
		maxPause: 2 * time.Second,
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly", 2: "recvonly"})
			wantAORs(t, r.docs[0], "sip:alice@example.com", "sip:charlie@example.com", "sip:bob@example.com")
			for _, p := range r.docs[0].Participants {
				if p.AOR == "sip:bob@example.com" && !p.Left {
					t.Errorf("bob, transferred away, is not marked left: %+v", p)
				}
			}
		},
	},
	oracleLikeCase("udp"),
	oracleLikeCase("tcp", "-t", "tn", "-max_socket", "64"),
	{
		// Kept at its 35 s: longer than 64·T1 (32 s), when the server ends a session whose ACK it did not take
		// and sipgo's own 2xx guard fires; the session must live on to the SRC's BYE.
		name: "izi/siprec_short_test", scenario: "izi-siprec-loreste/siprec_short_test.xml", activation: "immediate",
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "recvonly"})
			wantAORs(t, r.docs[0], "sip:test@test.com")
		},
	},
}

// oracleLikeCase is the Oracle-shaped SRC: it accepts our inactive answer, waits for our re-INVITE (sent
// after the activation delay), answers sendonly and only then plays two PCMA streams.
func oracleLikeCase(transport string, args ...string) sippCase {
	return sippCase{
		name:     "project-checks/uac_oracle_like_inactive_reinvite/" + transport,
		scenario: "project-checks/uac_oracle_like_inactive_reinvite.xml", activation: "delayed", pcap: true,
		env:   []string{"SIPHOOK_SIP_ACTIVATION_DELAY=300ms"},
		args:  args,
		edits: []edit{{"/tmp/pcap/g711a-2streams.pcap", "$SIPP/project-checks/pcap/g711a-2streams.pcap"}},
		check: func(t *testing.T, r *sippRun) {
			r.wantAnswers(t, map[int]string{1: "inactive,inactive"})
			var reinvites []string
			for _, m := range r.msgs {
				if !m.sent && m.status == 0 && m.method == "INVITE" {
					reinvites = append(reinvites, strings.Join(m.directions(), ","))
				}
			}
			if len(reinvites) == 0 || reinvites[0] != "recvonly,recvonly" {
				t.Errorf("our re-INVITEs offered %q, want recvonly,recvonly", reinvites)
			}
			r.wantTransport(t, strings.ToUpper(transport))
			doc := r.docs[0]
			if len(doc.Events) == 0 || doc.Events[0].Type != "activated" {
				t.Errorf("events = %+v, want activated first", doc.Events)
			}
			if !hasUCID(doc, "00144536801698162784") {
				t.Errorf("UUI UCID missing: %+v", doc.Identifiers)
			}
			r.wantAudio(t, doc, map[string]bool{"16777219": true, "16777220": true}, 100)
		},
	}
}

func TestSippScenarios(t *testing.T) {
	t.Parallel()
	for _, c := range sippCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runSippCase(t, c)
		})
	}
}

// TestSippOracleLikeFlow drives the binary with sipp as a third-party SRC: SIPREC INVITE over UDP, inactive
// answer, our re-INVITE after the configured delay, two PCMA streams from a pcap, BYE. TestSippScenarios runs
// the same case; this name is kept for running it alone.
func TestSippOracleLikeFlow(t *testing.T) {
	t.Parallel()
	runSippCase(t, oracleLikeCase("udp"))
}

// sippBinary finds sipp, or skips the test when it is missing (fails when SIPHOOK_REQUIRE_SIPP is set, as in
// CI). A scenario that plays a pcap needs root (CAP_NET_RAW): without it the test skips unless sipp is
// required, in which case it runs and fails.
func sippBinary(t *testing.T, pcap bool) string {
	t.Helper()
	required := os.Getenv("SIPHOOK_REQUIRE_SIPP") != ""
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if required {
			t.Fatal("sipp is required (apt-get install sip-tester)")
		}
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	if pcap && os.Geteuid() != 0 && !required {
		t.Skip("sipp plays pcap audio only as root (CAP_NET_RAW)")
	}
	return sipp
}

func runSippCase(t *testing.T, c sippCase) {
	sipp := sippBinary(t, c.pcap)
	srv := startServer(t, c.activation, c.env...)
	work := t.TempDir()
	if c.setup != nil {
		c.setup(t, work)
	}
	scenario := sippScenarioCopy(t, c, work)
	calls := max(c.calls, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{srv.addr, "-sf", scenario, "-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freePort(t) &^ 1), "-m", fmt.Sprint(calls),
		"-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(work, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(work, "messages.log")}
	cmd := exec.CommandContext(ctx, sipp, append(args, c.args...)...)
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	r := &sippRun{srv: srv, msgs: readSippMessages(t, filepath.Join(work, "messages.log")), wavs: map[string]*recorder.WAV{}}
	if err != nil {
		errLog, _ := os.ReadFile(filepath.Join(work, "errors.log"))
		t.Fatalf("sipp failed: %v\n%s\nerrors.log:\n%s", err, lastLines(out, 30), lastLines(errLog, 60))
	}

	if c.refused {
		time.Sleep(300 * time.Millisecond) // a refused INVITE has no session; give a wrong one time to show
		if files := listFiles(srv.dir); len(files) != 0 {
			t.Errorf("recordings written for refused calls: %v", files)
		}
		if n := len(r.answers(200)); n != 0 {
			t.Errorf("%d INVITEs answered 200, want none", n)
		}
	} else {
		r.docs = waitDocuments(t, srv.dir, calls)
		r.checkDocuments(t, c, calls)
	}
	if errs := srv.countLog("", func(l logLine) bool { return l.Level == "ERROR" }); errs != 0 {
		t.Errorf("server logged %d errors", errs)
	}
	if c.check != nil && !t.Failed() {
		c.check(t, r)
	}
}

var pauseRE = regexp.MustCompile(`<pause milliseconds="(\d+)"\s*/>`)

// sippScenarioCopy writes the case's scenario, patched, into work.
func sippScenarioCopy(t *testing.T, c sippCase, work string) string {
	t.Helper()
	dir, err := filepath.Abs("../../testdata/siprec/sipp")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, c.scenario))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.edits {
		if !bytes.Contains(b, []byte(e.old)) {
			t.Fatalf("%s no longer contains %q: review this case's patch", c.scenario, e.old)
		}
		repl := strings.NewReplacer("$SIPP", dir, "$WORK", work).Replace(e.new)
		b = bytes.ReplaceAll(b, []byte(e.old), []byte(repl))
	}
	if c.maxPause > 0 {
		b = pauseRE.ReplaceAllFunc(b, func(m []byte) []byte {
			ms, _ := strconv.Atoi(string(pauseRE.FindSubmatch(m)[1]))
			return fmt.Appendf(nil, `<pause milliseconds="%d"/>`, min(ms, int(c.maxPause.Milliseconds())))
		})
	}
	if bytes.Contains(b, []byte("/tmp/pcap/")) {
		t.Fatalf("%s plays a pcap from /tmp/pcap/ that this case does not point at testdata", c.scenario)
	}
	path := filepath.Join(work, filepath.Base(c.scenario))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkDocuments holds for every case that records: one final document per call, for its own Call-ID, ended
// by the SRC's BYE, after an ACK the server took (the session was established), in the state the activation
// mode gives.
func (r *sippRun) checkDocuments(t *testing.T, c sippCase, calls int) {
	t.Helper()
	callIDs := map[string]bool{}
	for _, doc := range r.docs {
		callIDs[doc.Session["sip_call_id"]] = true
		if doc.Session["end_reason"] != "bye" {
			t.Errorf("recording %s ended by %q, want bye", doc.RecordingID, doc.Session["end_reason"])
		}
		switch c.activation {
		case "on-match":
			if doc.State != recorder.StateNeverActivated || doc.Audio != nil {
				t.Errorf("recording %s: state %s, audio %+v; want never_activated without audio", doc.RecordingID, doc.State, doc.Audio)
			}
		default:
			if doc.State != recorder.StateCompleted || doc.Audio == nil {
				t.Fatalf("recording %s: state %s, audio %+v; want completed with audio", doc.RecordingID, doc.State, doc.Audio)
			}
			wav, err := recorder.ReadWAV(filepath.Join(r.srv.dir, doc.Audio.File))
			if err != nil {
				t.Fatal(err)
			}
			if len(wav.Channels) != len(doc.Channels) {
				t.Fatalf("WAV has %d channels, document %d", len(wav.Channels), len(doc.Channels))
			}
			r.wavs[doc.RecordingID] = wav
		}
	}
	if len(callIDs) != calls {
		t.Errorf("%d distinct Call-IDs among %d recordings, want %d", len(callIDs), len(r.docs), calls)
	}
	if c.activation == "on-match" {
		if wavs := slices.DeleteFunc(listFiles(r.srv.dir), func(p string) bool { return !strings.HasSuffix(p, ".wav") }); len(wavs) != 0 {
			t.Errorf("WAVs written for sessions never activated: %v", wavs)
		}
	}
	established := r.srv.countLog("recording session established", func(l logLine) bool { return callIDs[l.CallID] })
	if established != calls {
		t.Errorf("%d sessions established (ACK taken), want %d", established, calls)
	}
}

// wantAudio checks each channel, by label, for audio (RMS and packets) or silence.
func (r *sippRun) wantAudio(t *testing.T, doc *recorder.Document, audio map[string]bool, minPackets uint64) {
	t.Helper()
	wav := r.wavs[doc.RecordingID]
	if len(doc.Channels) != len(audio) {
		t.Fatalf("channels %+v, want labels %v", doc.Channels, audio)
	}
	for _, ch := range doc.Channels {
		want, ok := audio[ch.Label]
		if !ok {
			t.Errorf("unexpected channel %+v", ch)
			continue
		}
		rms := audiotest.RMS(wav.Channels[ch.Index])
		switch {
		case want && (rms < 100 || ch.Stats.Received < minPackets):
			t.Errorf("channel %d (%s): RMS %.1f, %d packets; want audio, >= %d packets", ch.Index, ch.Label, rms, ch.Stats.Received, minPackets)
		case !want && (rms != 0 || ch.Stats.Received != 0):
			t.Errorf("channel %d (%s): RMS %.1f, %d packets; want silence", ch.Index, ch.Label, rms, ch.Stats.Received)
		}
	}
}

func (r *sippRun) wantTransport(t *testing.T, transport string) {
	t.Helper()
	for _, doc := range r.docs {
		if doc.Session["transport"] != transport {
			t.Errorf("recording %s came over %q, want %s", doc.RecordingID, doc.Session["transport"], transport)
		}
	}
}

// wantAnswers checks the directions of our 200s to the SRC's INVITEs, by CSeq: one a= direction per m-line,
// comma-separated.
func (r *sippRun) wantAnswers(t *testing.T, want map[int]string) {
	t.Helper()
	if got := r.answers(200); !maps.Equal(got, want) {
		t.Errorf("answers by CSeq %v, want %v", got, want)
	}
}

// answers are the directions in the first response with the status to each INVITE sipp sent, by CSeq.
func (r *sippRun) answers(status int) map[int]string {
	out := map[int]string{}
	for _, m := range r.msgs {
		if !m.sent && m.status == status && m.method == "INVITE" {
			if _, ok := out[m.cseq]; !ok {
				out[m.cseq] = strings.Join(m.directions(), ",")
			}
		}
	}
	return out
}

// wantSRCHolds checks that the document has n holds by the SRC and no other pause.
func wantSRCHolds(t *testing.T, doc *recorder.Document, n int) {
	t.Helper()
	if len(doc.Pauses) != n || slices.ContainsFunc(doc.Pauses, func(p recorder.Pause) bool { return p.By != "src" }) {
		t.Fatalf("pauses %+v, want %d by the SRC", doc.Pauses, n)
	}
}

func wantAORs(t *testing.T, doc *recorder.Document, aors ...string) {
	t.Helper()
	var got []string
	for _, p := range doc.Participants {
		got = append(got, p.AOR)
	}
	for _, a := range aors {
		if !slices.Contains(got, a) {
			t.Errorf("participants %v, want %s among them", got, a)
		}
	}
}

// waitDocuments waits until n documents are final (no longer "recording") and returns them.
func waitDocuments(t *testing.T, dir string, n int) []*recorder.Document {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var docs []*recorder.Document
		final := 0
		for _, p := range listFiles(dir) {
			if !strings.HasSuffix(p, ".json") {
				continue
			}
			b, err := os.ReadFile(p)
			var doc recorder.Document
			if err != nil || json.Unmarshal(b, &doc) != nil {
				continue // being replaced
			}
			docs = append(docs, &doc)
			if doc.State != recorder.StateRecording {
				final++
			}
		}
		if final == len(docs) && len(docs) >= n {
			if len(docs) != n {
				t.Fatalf("%d recordings, want %d", len(docs), n)
			}
			slices.SortFunc(docs, func(a, b *recorder.Document) int { return a.Start.Compare(b.Start) })
			return docs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d documents final, want %d", final, len(docs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listFiles lists the recordings' files under dir (not the API's index, .index/).
func listFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// logLine is the part of a server log record the tests look at.
type logLine struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	CallID string `json:"call_id"`
	Method string `json:"method"`
	Code   int    `json:"code"`
}

// countLog counts the server's log records with the message (any when "") that match.
func (s *server) countLog(msg string, match func(logLine) bool) int {
	lw := s.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	text := lw.w.String()
	lw.mu.Unlock()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && (msg == "" || l.Msg == msg) && match(l) {
			n++
		}
	}
	return n
}

// sipMessage is one message from sipp's -trace_msg log.
type sipMessage struct {
	sent   bool
	status int    // 0 for a request
	method string // of the CSeq
	cseq   int
	body   string
}

// directions are the a=sendrecv/sendonly/recvonly/inactive attributes of the message's SDP, in order.
func (m sipMessage) directions() []string {
	var out []string
	for line := range strings.SplitSeq(m.body, "\n") {
		switch d := strings.TrimSpace(strings.TrimPrefix(line, "a=")); d {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			if strings.HasPrefix(line, "a=") {
				out = append(out, d)
			}
		}
	}
	return out
}

// readSippMessages parses sipp's message log: records separated by a dashed line with a timestamp, each a
// "UDP message sent (N bytes):" or "TCP message received [N] bytes :" line and the message.
func readSippMessages(t *testing.T, path string) []sipMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no sipp message log: %v", err)
		return nil
	}
	var out []sipMessage
	for rec := range strings.SplitSeq(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n-----------------------------------------------") {
		_, rec, _ = strings.Cut(rec, "\n") // the rest of the separator line
		kind, msg, ok := strings.Cut(rec, "\n")
		if !ok || !strings.Contains(kind, " message ") {
			continue
		}
		msg = strings.TrimLeft(msg, "\n")
		head, body, _ := strings.Cut(msg, "\n\n")
		lines := strings.Split(head, "\n")
		m := sipMessage{sent: strings.Contains(kind, " message sent"), body: body}
		if rest, ok := strings.CutPrefix(lines[0], "SIP/2.0 "); ok {
			m.status, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
		for _, h := range lines[1:] {
			name, value, _ := strings.Cut(h, ":")
			if strings.EqualFold(strings.TrimSpace(name), "CSeq") {
				if f := strings.Fields(value); len(f) == 2 {
					m.cseq, _ = strconv.Atoi(f[0])
					m.method = f[1]
				}
			}
		}
		out = append(out, m)
	}
	return out
}
