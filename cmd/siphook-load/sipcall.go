//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/siphook/siphook/sip/siptest"
)

// A lean SIPREC client on sipgo: the fake SBC side of every call. Unlike sip/siptest it owns no media
// sockets (the RTP sender does), so a call costs a dialog and a few small structs.

// template is a captured SIPREC INVITE: its extra headers and its body, prepared once per RTP shard (the SDP
// carries that shard's source port) with the per-call values left as placeholders.
type template struct {
	*siptest.Template        // headers, CRLF body, whether the captured Contact carried +sip.src
	streams           int    // audio m-lines
	ucidHex           string // the metadata's apkt:ucid value, replaced per call
}

var (
	connLine  = regexp.MustCompile(`(?m)^c=IN IP4 \S+`)
	originIP  = regexp.MustCompile(`(?m)^(o=.* IN IP4 )\S+`)
	audioLine = regexp.MustCompile(`(?m)^m=audio \d+ `)
	apktUCID  = regexp.MustCompile(`<apkt:ucid>([0-9A-Fa-f]+)</apkt:ucid>`)
)

// loadTemplate reads a sample of testdata/siprec (siptest.LoadTemplate) and notes what the generator varies
// per call: the audio m-lines and the metadata's UCID.
func loadTemplate(path string) (*template, error) {
	st, err := siptest.LoadTemplate(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &template{Template: st, streams: len(audioLine.FindAllString(st.Body, -1))}
	if t.streams == 0 {
		return nil, fmt.Errorf("%s: no audio m-line", path)
	}
	if m := apktUCID.FindStringSubmatch(st.Body); m != nil {
		t.ucidHex = m[1]
	}
	return t, nil
}

// forSource points the SDP at ip:port for every audio m-line (every stream is sent from one socket).
func (t *template) forSource(ip string, port int) string {
	body := connLine.ReplaceAllString(t.Body, "c=IN IP4 "+ip)
	body = originIP.ReplaceAllString(body, "${1}"+ip)
	return audioLine.ReplaceAllString(body, "m=audio "+strconv.Itoa(port)+" ")
}

// sdpInfo is what we read from the SRS's SDP: its address and, per audio m-line, port and direction.
type sdpInfo struct {
	ip    string
	ports []int
	dirs  []string
}

func parseSDP(body []byte) sdpInfo {
	var r sdpInfo
	inAudio := false
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			f := strings.Fields(line[2:])
			inAudio = len(f) >= 2 && f[0] == "audio"
			if inAudio {
				p, _ := strconv.Atoi(f[1])
				r.ports = append(r.ports, p)
				r.dirs = append(r.dirs, "sendrecv")
			}
		case strings.HasPrefix(line, "c=IN IP4 "):
			if len(r.ports) == 0 || inAudio {
				r.ip = strings.TrimSpace(line[len("c=IN IP4 "):])
			}
		case inAudio && len(r.dirs) > 0:
			switch line {
			case "a=sendonly", "a=recvonly", "a=sendrecv", "a=inactive":
				r.dirs[len(r.dirs)-1] = line[2:]
			}
		}
	}
	return r
}

// sipClient is the fake SBC: one UDP or TCP listener, one sipgo user agent for all calls.
type sipClient struct {
	transport string
	ip        string
	addr      string
	target    sip.Uri
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	dialogs   *sipgo.DialogUA
	closers   []func() error

	mu    sync.Mutex
	calls map[string]*sipCall
}

// sipCall is the signalling side of one call.
type sipCall struct {
	callID   string
	dlg      *sipgo.DialogClientSession
	answer   sdpInfo // the SRS's answer to the INVITE
	ourSDP   []byte  // our answer to its re-INVITEs: sendonly on our ports
	reinvite chan reinviteEvent
	acked    chan struct{} // closed on the SRS's first ACK of our 200 to its re-INVITE
	ackOnce  sync.Once
	ended    chan struct{} // closed when the SRS sends BYE
	endOnce  sync.Once
}

type reinviteEvent struct {
	at  time.Time
	sdp sdpInfo
}

func newSIPClient(transport, ip, target string) (*sipClient, error) {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("-sip %q: %w", target, err)
	}
	port, _ := strconv.Atoi(portStr)
	c := &sipClient{transport: transport, ip: ip, calls: map[string]*sipCall{}}
	c.target = sip.Uri{Scheme: "sip", User: "srs", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	if transport != "udp" {
		c.target.UriParams.Add("transport", transport)
	}
	c.ua, err = sipgo.NewUA(sipgo.WithUserAgent("siphook-load"))
	if err != nil {
		return nil, err
	}
	if c.srv, err = sipgo.NewServer(c.ua); err != nil {
		return nil, err
	}
	switch transport {
	case "udp":
		// Real SRCs send their 3–6 KiB SIPREC INVITEs over UDP in IP fragments; sipgo refuses to send more
		// than 1300 bytes over UDP unless told otherwise (a process-wide setting).
		sip.UDPMTUSize = 1 << 16
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			return nil, err
		}
		if u, ok := pc.(*net.UDPConn); ok {
			u.SetReadBuffer(4 << 20)
			u.SetWriteBuffer(4 << 20)
		}
		c.addr = pc.LocalAddr().String()
		c.closers = append(c.closers, pc.Close)
		go c.srv.ServeUDP(pc)
		// Requests and responses share one address, as an SBC's do.
		c.client, err = sipgo.NewClient(c.ua, sipgo.WithClientConnectionAddr(c.addr))
		if err != nil {
			return nil, err
		}
	case "tcp":
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return nil, err
		}
		c.addr = l.Addr().String()
		c.closers = append(c.closers, l.Close)
		go c.srv.ServeTCP(l)
		if c.client, err = sipgo.NewClient(c.ua, sipgo.WithClientHostname(ip)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("-transport %q: want udp or tcp", transport)
	}
	_, lport, _ := net.SplitHostPort(c.addr)
	lp, _ := strconv.Atoi(lport)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "loadSrc", Host: ip, Port: lp, UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	if transport != "udp" {
		contact.Address.UriParams.Add("transport", transport)
	}
	c.dialogs = &sipgo.DialogUA{Client: c.client, ContactHDR: contact}
	c.srv.OnInvite(c.onInvite)
	c.srv.OnAck(c.onAck)
	c.srv.OnBye(c.onBye)
	return c, nil
}

func (c *sipClient) close() {
	for _, f := range c.closers {
		f()
	}
	c.ua.Close()
}

// invite sends the INVITE (headers and body already per call) and returns once it is answered 2xx and ACKed.
func (c *sipClient) invite(ctx context.Context, call *sipCall, headers [][2]string, body string, srcContact bool) error {
	req := sip.NewRequest(sip.INVITE, c.target)
	req.SetTransport(strings.ToUpper(c.transport))
	cid := sip.CallIDHeader(call.callID)
	req.AppendHeader(&cid)
	contact := c.dialogs.ContactHDR
	contact.Params = sip.NewParams()
	if srcContact {
		contact.Params.Add("+sip.src", "")
	}
	req.AppendHeader(&contact)
	for _, h := range headers {
		req.AppendHeader(sip.NewHeader(h[0], h[1]))
	}
	req.SetBody([]byte(body))

	c.mu.Lock()
	c.calls[call.callID] = call
	c.mu.Unlock()
	dlg, err := c.dialogs.WriteInvite(ctx, req)
	if err != nil {
		c.forget(call)
		return fmt.Errorf("invite: %w", err)
	}
	call.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		c.forget(call)
		dlg.Close()
		if res := dialogResponse(err); res != nil {
			return fmt.Errorf("invite: %d %s", res.StatusCode, res.Reason)
		}
		return fmt.Errorf("invite: %w", err)
	}
	call.answer = parseSDP(dlg.InviteResponse.Body())
	if err := dlg.Ack(ctx); err != nil {
		c.forget(call)
		dlg.Close()
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

func dialogResponse(err error) *sip.Response {
	if e, ok := errors.AsType[*sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	if e, ok := errors.AsType[sipgo.ErrDialogResponse](err); ok {
		return e.Res
	}
	return nil
}

// bye hangs up and forgets the call.
func (c *sipClient) bye(ctx context.Context, call *sipCall) error {
	defer c.forget(call)
	select {
	case <-call.ended:
		call.dlg.Close()
		return errors.New("the SRS ended the call first")
	default:
	}
	if err := call.dlg.Bye(ctx); err != nil {
		if res := dialogResponse(err); res != nil {
			return fmt.Errorf("bye: %d %s", res.StatusCode, res.Reason)
		}
		return fmt.Errorf("bye: %w", err)
	}
	return nil
}

func (c *sipClient) forget(call *sipCall) {
	c.mu.Lock()
	delete(c.calls, call.callID)
	c.mu.Unlock()
}

func (c *sipClient) lookup(req *sip.Request) *sipCall {
	id := req.CallID()
	if id == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id.Value()]
}

// onInvite answers the SRS's re-INVITE 200 sendonly on our ports and notes when it arrived.
func (c *sipClient) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	at := time.Now()
	call := c.lookup(req)
	if call == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	info := parseSDP(req.Body())
	res := sip.NewSDPResponseFromRequest(req, call.ourSDP)
	contact := c.dialogs.ContactHDR
	res.AppendHeader(&contact)
	if err := tx.Respond(res); err != nil {
		slog.Warn("answering a re-INVITE", "call_id", call.callID, "error", err)
		return
	}
	if c.transport == "udp" {
		// The UAS core, not the transaction, retransmits a 2xx until it is ACKed (RFC 3261 13.3.1.4): sipgo's
		// server transaction absorbs the re-INVITE's retransmissions, so a lost 200 would fail the re-INVITE.
		go retransmit2xx(tx, res, call.acked)
	}
	select {
	case call.reinvite <- reinviteEvent{at: at, sdp: info}:
	default:
	}
}

func (c *sipClient) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if call := c.lookup(req); call != nil {
		call.ackOnce.Do(func() { close(call.acked) })
	}
}

// retransmit2xx resends res at T1, 2·T1, … (at most T2 apart) until acked is closed or 64·T1 passed.
func retransmit2xx(tx sip.ServerTransaction, res *sip.Response, acked <-chan struct{}) {
	interval, deadline := sip.T1, time.Now().Add(64*sip.T1)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-acked:
			return
		case <-tx.Done():
			return
		case <-timer.C:
		}
		if time.Now().After(deadline) || tx.Respond(res) != nil {
			return
		}
		interval = min(2*interval, sip.T2)
		timer.Reset(interval)
	}
}

func (c *sipClient) onBye(req *sip.Request, tx sip.ServerTransaction) {
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if call := c.lookup(req); call != nil {
		call.endOnce.Do(func() { close(call.ended) })
	}
}

// newSIPCall prepares a call's signalling state; ourSDP answers the SRS's re-INVITEs.
func newSIPCall(ip string, port, streams int) *sipCall {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", ip, ip)
	for range streams {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n", port)
	}
	return &sipCall{
		callID: uuid.NewString() + "@siphook-load", ourSDP: []byte(b.String()),
		reinvite: make(chan reinviteEvent, 4), acked: make(chan struct{}), ended: make(chan struct{}),
	}
}
