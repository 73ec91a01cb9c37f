package sip

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/testcert"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// TestTLSSessionActivatedOnItsConnection runs the on-match flow over TLS: the activation re-INVITE must reach
// the SRC over the connection the SRC opened (sipgo issue #361: a new dial would go to the SRC's Contact,
// where nothing listens).
func TestTLSSessionActivatedOnItsConnection(t *testing.T) {
	certFile, keyFile, roots := testcert.Write(t)
	waiting := make(chan *Session, 1)
	ts := newTestServer(t, ActivateOnMatch, WithOnWaiting(func(s *Session) { waiting <- s }), func(s *Server) {
		s.cfg.TLS.Listen = "127.0.0.1:0"
		s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile = certFile, keyFile
	})
	if ts.Addr("tls") == "" {
		t.Fatal("no TLS listener")
	}
	src, err := siptest.NewTLSSRC(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tls"), Template: loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if c := call.Answer.Contact(); c == nil || !strings.Contains(c.Address.String(), "transport=tls") {
		t.Errorf("Contact over TLS = %v, want transport=tls", call.Answer.Contact())
	}
	sess := <-waiting
	go sess.Activate(ctx)
	if _, err := call.WaitReinvite(ctx); err != nil {
		t.Fatalf("no re-INVITE over TLS: %v", err)
	}
	waitFor(t, "recording state", func() bool { return sess.State() == StateRecording })
	if err := call.SendTones(ctx, []float64{440, 1000}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	<-sess.Done()
	wav, err := recorder.ReadWAV(sess.RecordingPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := audiotest.TonePresentSamples(wav.Channels[0], 8000, 440); got < 8000*90/100 {
		t.Errorf("440 Hz present in %d samples of channel 0", got)
	}
}
