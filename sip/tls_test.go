package sip

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/testcert"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/sdes"
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

// TestSRTPOverTLS: an SBC offers SRTP (SDES) over TLS. We answer RTP/SAVP with a key of our own per m-line,
// decrypt both streams into their channels, and never write a key to the log.
func TestSRTPOverTLS(t *testing.T) {
	certFile, keyFile, roots := testcert.Write(t)
	logs := &syncWriter{}
	ts := newTestServer(t, ActivateImmediately, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), func(s *Server) {
		s.cfg.TLS.Listen = "127.0.0.1:0"
		s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile = certFile, keyFile
	})
	src, err := siptest.NewTLSSRC(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tmpl := loadTemplate(t, "synthetic/syn-11-oracle-like-INVITE-SRTP-SDES-TLS.txt")
	call, err := src.Invite(ctx, siptest.Dial{Target: ts.Addr("tls"), Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	answer := string(call.Answer.Body())
	offered := []string{"WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", "bTNuZjB4aGU0c2w1Yzc0dGg4Nmdua2k0dGhlNjFh"}
	var ours []string
	for line := range strings.Lines(answer) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=crypto:"); ok {
			c, err := sdes.ParseCrypto(v)
			if err != nil || c.Suite.Name != "AES_CM_128_HMAC_SHA1_80" || c.Tag != 1 {
				t.Errorf("answer a=crypto %s: %v", c.Redacted(), err)
			}
			ours = append(ours, v)
		}
	}
	if strings.Count(answer, "RTP/SAVP") != 2 || len(ours) != 2 || ours[0] == ours[1] {
		t.Fatalf("answer does not carry RTP/SAVP with a distinct key per m-line:\n%s", answer)
	}
	for _, k := range offered {
		if strings.Contains(answer, k) {
			t.Error("answer repeats the SRC's key")
		}
	}
	sess := ts.SessionByCallID(call.CallID)
	if err := call.SendTones(ctx, []float64{440, 1000}, time.Second); err != nil {
		t.Fatal(err)
	}
	doc := hangUp(ctx, t, ts, call, sess)
	wav, err := recorder.ReadWAV(sess.RecordingPath())
	if err != nil {
		t.Fatal(err)
	}
	for i, tone := range []float64{440, 1000} {
		ch := doc.Channels[i]
		if got := audiotest.TonePresentSamples(wav.Channels[ch.Index], wav.SampleRate, tone); got < 7200 {
			t.Errorf("channel %d: %d samples of %g Hz decrypted, want about 8000", ch.Index, got, tone)
		}
		if ch.Stats.Received < 45 {
			t.Errorf("channel %d: %d packets received", ch.Index, ch.Stats.Received)
		}
	}
	log := logs.String()
	for _, k := range append(offered, ours...) {
		key := k
		if f := strings.Fields(k); len(f) == 3 {
			key = strings.TrimPrefix(f[2], "inline:")
		}
		if strings.Contains(log, key) {
			t.Errorf("an SRTP key is in the log")
		}
	}
	if log == "" {
		t.Error("no log lines captured")
	}
}

// syncWriter collects log lines from the server's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestTLSClientCertificate: with require_client_cert an SBC without a certificate signed by client_ca_file
// cannot connect; one with it records as usual.
func TestTLSClientCertificate(t *testing.T) {
	certFile, keyFile, roots := testcert.Write(t)
	ts := newTestServer(t, ActivateImmediately, func(s *Server) {
		s.cfg.TLS.Listen = "127.0.0.1:0"
		s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile = certFile, keyFile
		s.cfg.TLS.ClientCAFile, s.cfg.TLS.RequireClientCert = certFile, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tmpl := loadTemplate(t, "oracle-sbc-2026-headers-template-INVITE.txt")

	anonymous, err := siptest.NewTLSSRC(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(anonymous.Close)
	ictx, icancel := context.WithTimeout(ctx, 3*time.Second)
	defer icancel()
	if _, err := anonymous.Invite(ictx, siptest.Dial{Target: ts.Addr("tls"), Template: tmpl}); err == nil {
		t.Fatal("an SBC without a client certificate got a session")
	}
	if n := ts.Sessions(); n != 0 {
		t.Fatalf("%d sessions after a refused handshake", n)
	}

	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := siptest.NewTLSSRC(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(trusted.Close)
	call, err := trusted.Invite(ctx, siptest.Dial{Target: ts.Addr("tls"), Template: tmpl})
	if err != nil {
		t.Fatalf("an SBC with a trusted client certificate: %v", err)
	}
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}
