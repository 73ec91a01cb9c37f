// Package siptest is a fake SIPREC client (the recording side of an SBC) for tests, the demo and the load
// generator: it sends SIPREC INVITEs built from captured messages, answers the SRS's re-INVITEs sendonly,
// sends G.711 tones as RTP (dropped and delayed on request: Call.Impair) and hangs up.
package siptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/siphook/siphook/internal/audiotest"
	"github.com/siphook/siphook/internal/g711"
	"github.com/siphook/siphook/rtp"
	"github.com/siphook/siphook/sip/sdes"
)

// SRC is one fake SBC. Fields set before the first Invite change its behaviour; nil means the default.
type SRC struct {
	// OnReinvite decides the status code for an SRS re-INVITE (default 200, answered sendonly).
	OnReinvite func(call *Call, req *sip.Request) int

	transport string
	ip        string
	addr      string
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	dialogs   *sipgo.DialogUA
	closers   []func() error

	mu    sync.Mutex
	calls map[string]*Call
}

// NewSRC listens on a loopback port for the given transport ("udp" or "tcp"). For "tls" use NewTLSSRC.
func NewSRC(transport string) (*SRC, error) { return newSRC(transport, nil) }

// NewTLSSRC dials the SRS over TLS with conf. It does not listen: like an SBC behind its own TLS connection,
// it expects the SRS's in-dialog requests on the connection it opened.
func NewTLSSRC(conf *tls.Config) (*SRC, error) { return newSRC("tls", conf) }

func newSRC(transport string, tlsConf *tls.Config) (*SRC, error) {
	s := &SRC{transport: transport, ip: "127.0.0.1", calls: map[string]*Call{}}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("siptest-src"), sipgo.WithUserAgenTLSConfig(tlsConf))
	if err != nil {
		return nil, err
	}
	s.ua = ua
	if s.srv, err = sipgo.NewServer(ua); err != nil {
		return nil, err
	}
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp", s.ip+":0")
		if err != nil {
			return nil, err
		}
		s.addr = pc.LocalAddr().String()
		s.closers = append(s.closers, pc.Close)
		go s.srv.ServeUDP(pc)
		// Send from the listening socket, as an SBC does: requests and responses share one address.
		s.client, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(s.addr))
	case "tcp":
		l, err := net.Listen("tcp", s.ip+":0")
		if err != nil {
			return nil, err
		}
		s.addr = l.Addr().String()
		s.closers = append(s.closers, l.Close)
		go s.srv.ServeTCP(l)
		s.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(s.ip))
	case "tls":
		s.addr = s.ip + ":5061" // advertised only; see NewTLSSRC
		s.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(s.ip))
	default:
		return nil, fmt.Errorf("siptest: transport %q", transport)
	}
	if err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(s.addr)
	port, _ := strconv.Atoi(portStr)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "acmeSrc", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	if transport != "udp" {
		contact.Address.UriParams.Add("transport", transport)
	}
	s.dialogs = &sipgo.DialogUA{Client: s.client, ContactHDR: contact}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	s.srv.OnBye(s.onBye)
	return s, nil
}

// Close stops the SRC and every call's sockets.
func (s *SRC) Close() {
	s.mu.Lock()
	for _, c := range s.calls {
		c.closeMedia()
	}
	s.mu.Unlock()
	for _, c := range s.closers {
		c()
	}
	s.ua.Close()
}

// Dial is one INVITE to send.
type Dial struct {
	Target   string    // SRS host:port
	Template *Template // captured INVITE whose headers and body are sent
	Headers  [][2]string
	SkipAck  bool // never ACK the 2xx (to test the SRS's no-ACK handling)
	// CancelAfter sends CANCEL this long after the first provisional response.
	CancelAfter time.Duration
}

// Call is one recording session from the SRC's side.
type Call struct {
	src    *SRC
	dlg    *sipgo.DialogClientSession
	CallID string
	Answer *sip.Response // the SRS's final response to the INVITE
	// AnswerDirections are the directions the answer gave our audio m-lines (Directions may already reflect
	// a re-INVITE that came at once).
	AnswerDirections []string
	media            []*net.UDPConn // one per audio m-line of the offer

	reinvites chan *sip.Request
	ended     chan struct{} // closed when the SRS hangs up
	byeFrom   string        // where the SRS's BYE came from
	endOnce   sync.Once

	mu     sync.Mutex
	remote remoteMedia // the SRS's latest SDP
	seq    []uint16
	ts     []uint32
	ssrc   []uint32
	pt     []uint8          // per audio m-line: the payload type we send, 0 (PCMU) or 8 (PCMA)
	gone   []bool           // per audio m-line: removed (port 0) by ReplaceStream
	crypto []*sdes.Crypto   // per audio m-line: our SRTP key from the offer, nil for plain RTP
	srtp   []*rtp.Encrypter // per audio m-line, from crypto
	sent   int              // samples sent per stream so far (tone phase)

	impair     Impairment   // applied by SendTones
	impairFrom int          // sent when Impair was called: packet 0 of the impairment
	sentJitter []sendJitter // per audio m-line: the jitter of the packets as sent
}

type remoteMedia struct {
	ip         string
	ports      []int
	directions []string
}

// Invite sends a SIPREC INVITE and returns once it is answered 2xx (and ACKed unless SkipAck). A non-2xx
// final answer comes back as an *sipgo.ErrDialogResponse error carrying the response.
func (s *SRC) Invite(ctx context.Context, d Dial) (*Call, error) {
	c := &Call{src: s, reinvites: make(chan *sip.Request, 8), ended: make(chan struct{})}
	body, n := rewriteSDP(d.Template.Body, s.ip, func(i int) int {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(s.ip)})
		if err != nil {
			return 9 // discard port: the test will fail on missing media, not here
		}
		c.media = append(c.media, conn)
		return conn.LocalAddr().(*net.UDPAddr).Port
	})
	c.seq, c.ts, c.ssrc = make([]uint16, n), make([]uint32, n), make([]uint32, n)
	c.crypto, c.srtp = offerKeys(body, n)
	c.pt, c.gone = make([]uint8, n), make([]bool, n)
	for i := range c.ssrc {
		c.ssrc[i] = rand.Uint32()
		c.seq[i] = uint16(rand.Uint32())
		c.ts[i] = rand.Uint32()
	}

	host, portStr, err := net.SplitHostPort(d.Target)
	if err != nil {
		c.closeMedia()
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	uri := sip.Uri{Scheme: "sip", User: "srs", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	if s.transport != "udp" {
		uri.UriParams.Add("transport", s.transport)
	}
	var hdrs []sip.Header
	for _, h := range append(d.Template.Headers, d.Headers...) {
		hdrs = append(hdrs, sip.NewHeader(h[0], h[1]))
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(s.transport))
	contact := s.dialogs.ContactHDR
	contact.Params = sip.NewParams()
	if d.Template.SRCContact {
		contact.Params.Add("+sip.src", "")
	}
	req.AppendHeader(&contact)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	req.SetBody([]byte(body))

	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	dlg, err := s.dialogs.WriteInvite(ictx, req)
	if err != nil {
		c.closeMedia()
		return nil, err
	}
	c.dlg = dlg
	c.CallID = req.CallID().Value()
	s.mu.Lock()
	s.calls[c.CallID] = c
	s.mu.Unlock()

	opts := sipgo.AnswerOptions{}
	if d.CancelAfter > 0 {
		opts.OnResponse = func(res *sip.Response) error {
			if res.IsProvisional() {
				time.AfterFunc(d.CancelAfter, cancel)
			}
			return nil
		}
	}
	if err := dlg.WaitAnswer(ictx, opts); err != nil {
		c.Close()
		if d.CancelAfter > 0 && dlg.InviteResponse != nil && !dlg.InviteResponse.IsProvisional() {
			return nil, &sipgo.ErrDialogResponse{Res: dlg.InviteResponse}
		}
		return nil, err
	}
	c.Answer = dlg.InviteResponse
	if err := c.takeSDP(dlg.InviteResponse.Body()); err != nil {
		c.Close()
		return nil, err
	}
	c.AnswerDirections = c.Directions()
	if !d.SkipAck {
		if err := dlg.Ack(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Directions are the directions the SRS gave our audio m-lines in its latest SDP.
func (c *Call) Directions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.remote.directions...)
}

// RemotePorts are the SRS's ports for our audio m-lines in its latest SDP (0: not recorded).
func (c *Call) RemotePorts() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.remote.ports...)
}

// WaitReinvite returns the next re-INVITE from the SRS, after it has been answered.
func (c *Call) WaitReinvite(ctx context.Context) (*sip.Request, error) {
	select {
	case r := <-c.reinvites:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SendTones sends, in real time, one PCMU stream per tone (tones[i] Hz on audio m-line i; 0 = silence) for
// duration d, 20 ms per packet, to the ports of the SRS's latest SDP, impaired as Impair says. Packets leave
// at their due time (start + 20 ms·n, plus any delay) from one loop, so delayed ones go out in order of that
// time without holding up the others; it returns once d has passed and every delayed packet is sent.
func (c *Call) SendTones(ctx context.Context, tones []float64, d time.Duration) error {
	const (
		frame = 160 // 20 ms at 8 kHz
		ptime = 20 * time.Millisecond
	)
	frames := int(d / ptime)
	payload := make([]byte, frame)
	var q sendQueue
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for f := 0; ; {
		now := time.Now()
		if err := q.sendDue(c, now); err != nil {
			return err
		}
		due := start.Add(time.Duration(f) * ptime)
		if f < frames && !due.After(now) {
			if err := c.makeFrame(&q, tones, due, payload); err != nil {
				return err
			}
			f++
			continue // its undelayed packets are due now
		}
		// Wait for the next frame or delayed packet; after the last frame, for the end of the audio.
		var wake time.Time
		next, queued := q.next()
		end := start.Add(time.Duration(frames) * ptime)
		switch {
		case f < frames:
			wake = due
			if queued && next.Before(wake) {
				wake = next
			}
		case queued:
			wake = next
		case now.Before(end):
			wake = end
		default:
			return nil
		}
		timer.Reset(time.Until(wake))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// makeFrame builds one 20 ms packet per stream and queues it for due plus its impairment delay, or drops it.
func (c *Call) makeFrame(q *sendQueue, tones []float64, due time.Time, payload []byte) error {
	const frame = 160
	c.mu.Lock()
	defer c.mu.Unlock()
	remote := c.remote
	k := (c.sent - c.impairFrom) / frame // packet index for the impairment
	for i, freq := range tones {
		if i >= len(c.media) || i >= len(remote.ports) || remote.ports[i] == 0 {
			continue
		}
		pcm := audiotest.Sine(freq, 0.5, 8000, c.sent, frame)
		for j, s := range pcm {
			if c.pt[i] == 8 {
				payload[j] = g711.EncodeALaw(s)
			} else {
				payload[j] = g711.EncodeULaw(s)
			}
		}
		pkt := pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: c.pt[i], SequenceNumber: c.seq[i], Timestamp: c.ts[i], SSRC: c.ssrc[i]}, Payload: payload}
		ts := c.ts[i]
		c.seq[i]++
		c.ts[i] += frame
		if c.impair.Drop(k) {
			continue // lost on the way: its sequence number and timestamp are gone with it
		}
		b, err := pkt.Marshal()
		if err == nil && c.srtp[i] != nil {
			b, err = c.srtp[i].EncryptRTP(nil, b)
		}
		if err != nil {
			return err
		}
		q.push(outPacket{due: due.Add(c.impair.Delay(k)), stream: i, ts: ts, conn: c.media[i], dst: &net.UDPAddr{IP: net.ParseIP(remote.ip), Port: remote.ports[i]}, b: b})
	}
	c.sent += frame
	return nil
}

// NewSSRC makes audio m-line i start over as a new sender (new SSRC, sequence number and timestamp), as
// after an SBC failover.
func (c *Call) NewSSRC(i int) {
	c.mu.Lock()
	c.ssrc[i], c.seq[i], c.ts[i] = rand.Uint32(), uint16(rand.Uint32()), rand.Uint32()
	if i < len(c.sentJitter) {
		c.sentJitter[i].ref = false // a new timestamp base
	}
	c.mu.Unlock()
}

// Ended is closed when the SRS sends BYE.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// ByeSource is the address the SRS's BYE came from, once Ended is closed.
func (c *Call) ByeSource() string {
	<-c.ended
	return c.byeFrom
}

// Bye hangs up.
func (c *Call) Bye(ctx context.Context) error {
	defer c.Close()
	return c.dlg.Bye(ctx)
}

// ReinviteWithMetadata sends an SRC re-INVITE whose multipart body carries our SDP (sendonly, the ports
// we already use) and new rs-metadata, as an Oracle SBC does once the call is answered; it ACKs a 2xx.
func (c *Call) ReinviteWithMetadata(ctx context.Context, metadata string) (*sip.Response, error) {
	const boundary = "siptest-reinvite"
	body := "--" + boundary + "\r\nContent-Type: application/sdp\r\n\r\n" + string(c.answerSDP("sendonly")) +
		"\r\n--" + boundary + "\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(metadata, "\r\n", "\n"), "\n", "\r\n") + "\r\n--" + boundary + "--\r\n"
	return c.reinvite(ctx, "multipart/mixed;boundary="+boundary, []byte(body))
}

// Hold puts the recording on hold as an SBC does when the call is held (a re-INVITE with every stream
// inactive and, old style, c=0.0.0.0), or resumes it (sendonly again).
func (c *Call) Hold(ctx context.Context, held bool) (*sip.Response, error) {
	if held {
		return c.reinvite(ctx, "application/sdp", c.answerSDP("inactive"))
	}
	return c.reinvite(ctx, "application/sdp", c.answerSDP("sendonly"))
}

// ReplaceStream re-INVITEs with audio m-line i removed (port 0) and a new one added at the end, sending
// payload type pt (0 PCMU, 8 PCMA) from a new socket and SSRC, as an SBC does when a leg of the call is
// replaced. Tones for the new line go at index len(lines)-1 of SendTones.
func (c *Call) ReplaceStream(ctx context.Context, i int, pt uint8) (*sip.Response, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(c.src.ip)})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.gone[i] = true
	c.media = append(c.media, conn)
	c.seq, c.ts, c.ssrc = append(c.seq, uint16(rand.Uint32())), append(c.ts, rand.Uint32()), append(c.ssrc, rand.Uint32())
	c.pt, c.gone = append(c.pt, pt), append(c.gone, false)
	c.crypto, c.srtp = append(c.crypto, nil), append(c.srtp, nil)
	c.mu.Unlock()
	return c.reinvite(ctx, "application/sdp", c.answerSDP("sendonly"))
}

// reinvite sends an SRC re-INVITE with the given body and ACKs a 2xx.
func (c *Call) reinvite(ctx context.Context, contentType string, body []byte) (*sip.Response, error) {
	target := c.dlg.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	req.SetTransport(strings.ToUpper(c.src.transport))
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.SetBody(body)
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsSuccess() {
		if err := c.takeSDP(res.Body()); err != nil {
			return res, err
		}
		ack := sip.NewRequest(sip.ACK, target)
		ack.SetTransport(strings.ToUpper(c.src.transport))
		return res, c.dlg.WriteRequest(ack)
	}
	return res, nil
}

// Update sends an in-dialog UPDATE with the given body (Avaya SBCE and BroadWorks send metadata this way) and
// returns the final response.
func (c *Call) Update(ctx context.Context, contentType string, body []byte) (*sip.Response, error) {
	req := sip.NewRequest(sip.UPDATE, c.dlg.InviteResponse.Contact().Address)
	req.SetTransport(strings.ToUpper(c.src.transport))
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.AppendHeader(sip.NewHeader("Content-Disposition", "recording-session"))
	req.SetBody(body)
	return c.dlg.Do(ctx, req)
}

// ByeWithBody hangs up with a body, as Ribbon SBCs send partial metadata on BYE.
func (c *Call) ByeWithBody(ctx context.Context, contentType string, body []byte) error {
	defer c.Close()
	bye := sip.NewRequest(sip.BYE, c.dlg.InviteResponse.Contact().Address)
	bye.AppendHeader(sip.NewHeader("Content-Type", contentType))
	bye.SetBody(body)
	return c.dlg.WriteBye(ctx, bye)
}

// Close frees the call's sockets without signalling.
func (c *Call) Close() {
	c.closeMedia()
	c.src.mu.Lock()
	delete(c.src.calls, c.CallID)
	c.src.mu.Unlock()
	if c.dlg != nil {
		c.dlg.Close()
	}
}

func (c *Call) closeMedia() {
	for _, m := range c.media {
		m.Close()
	}
}

// takeSDP reads the SRS's SDP: its address and, per audio m-line, port and direction.
func (c *Call) takeSDP(body []byte) error {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return fmt.Errorf("siptest: SRS SDP: %w", err)
	}
	r := remoteMedia{}
	if sd.ConnectionInformation != nil && sd.ConnectionInformation.Address != nil {
		r.ip = sd.ConnectionInformation.Address.Address
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		if md.ConnectionInformation != nil && md.ConnectionInformation.Address != nil {
			r.ip = md.ConnectionInformation.Address.Address
		}
		dir := "sendrecv"
		for _, a := range md.Attributes {
			switch a.Key {
			case "sendonly", "recvonly", "sendrecv", "inactive":
				dir = a.Key
			}
		}
		r.ports = append(r.ports, md.MediaName.Port.Value)
		r.directions = append(r.directions, dir)
	}
	c.mu.Lock()
	c.remote = r
	c.mu.Unlock()
	return nil
}

// answerSDP is our SDP with every audio line in the given direction on our ports (sendonly: our answer to
// an SRS re-INVITE); inactive also zeroes the address, as RFC 2543-style hold does.
func (c *Call) answerSDP(direction string) []byte {
	var b strings.Builder
	conn := c.src.ip
	if direction == "inactive" {
		conn = "0.0.0.0"
	}
	fmt.Fprintf(&b, "v=0\r\no=- 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", c.src.ip, conn)
	for i, m := range c.media {
		if c.gone[i] {
			b.WriteString("m=audio 0 RTP/AVP 0\r\n")
			continue
		}
		proto, crypto := "RTP/AVP", ""
		if c.crypto[i] != nil {
			proto, crypto = "RTP/SAVP", "a=crypto:"+c.crypto[i].String()+"\r\n"
		}
		codec := map[uint8]string{0: "PCMU", 8: "PCMA"}[c.pt[i]]
		fmt.Fprintf(&b, "m=audio %d %s %d 101\r\na=rtpmap:%d %s/8000\r\na=rtpmap:101 telephone-event/8000\r\n%sa=%s\r\n",
			m.LocalAddr().(*net.UDPAddr).Port, proto, c.pt[i], c.pt[i], codec, crypto, direction)
	}
	return []byte(b.String())
}

func (s *SRC) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	s.mu.Lock()
	c := s.calls[req.CallID().Value()]
	s.mu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	code := 200
	if s.OnReinvite != nil {
		code = s.OnReinvite(c, req)
	}
	if code != 200 {
		tx.Respond(sip.NewResponseFromRequest(req, code, "Test", nil))
		return
	}
	if err := c.takeSDP(req.Body()); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, c.answerSDP("sendonly"))
	contact := s.dialogs.ContactHDR
	res.AppendHeader(&contact)
	if err := tx.Respond(res); err != nil {
		return
	}
	select {
	case c.reinvites <- req:
	default:
	}
}

func (s *SRC) onBye(req *sip.Request, tx sip.ServerTransaction) {
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	s.mu.Lock()
	c := s.calls[req.CallID().Value()]
	s.mu.Unlock()
	if c != nil {
		c.closeMedia()
		c.endOnce.Do(func() {
			c.byeFrom = req.Source()
			close(c.ended)
		})
	}
}

// ResponseCode extracts the status code from an Invite error, or 0.
func ResponseCode(err error) int {
	if res := Response(err); res != nil {
		return res.StatusCode
	}
	return 0
}

// Response extracts the final response from an Invite error, or nil.
func Response(err error) *sip.Response {
	if e, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	if e, ok := errors.AsType[sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	return nil
}

// offerKeys reads the first a=crypto of each of the offer's n audio m-lines: the keys the SRC encrypts with.
func offerKeys(body string, n int) ([]*sdes.Crypto, []*rtp.Encrypter) {
	cryptos, encs := make([]*sdes.Crypto, n), make([]*rtp.Encrypter, n)
	sections := strings.Split(body, "m=audio ")
	for i := 1; i < len(sections) && i <= n; i++ {
		for line := range strings.Lines(sections[i]) {
			if strings.HasPrefix(line, "m=") {
				break // the next, non-audio m-line
			}
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=crypto:")
			if !ok {
				continue
			}
			c, err := sdes.ParseCrypto(v)
			if err != nil {
				continue
			}
			if enc, err := rtp.NewEncrypter(c.SRTPKey()); err == nil {
				cryptos[i-1], encs[i-1] = &c, enc
			}
			break
		}
	}
	return cryptos, encs
}
