package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/recorder"
	"github.com/siphook/siphook/sip/siptest"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "siphook test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// TestTLSSessionActivatedOnItsConnection runs the on-match flow over TLS: the activation re-INVITE must reach
// the SRC over the connection the SRC opened (sipgo issue #361: a new dial would go to the SRC's Contact,
// where nothing listens).
func TestTLSSessionActivatedOnItsConnection(t *testing.T) {
	certFile, keyFile := selfSignedCert(t)
	waiting := make(chan *Session, 1)
	ts := newTestServer(t, ActivateOnMatch, WithOnWaiting(func(s *Session) { waiting <- s }), func(s *Server) {
		s.cfg.TLS.Listen = "127.0.0.1:0"
		s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile = certFile, keyFile
	})
	if ts.Addr("tls") == "" {
		t.Fatal("no TLS listener")
	}
	roots := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	roots.AppendCertsFromPEM(pemBytes)
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
