package genesystest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	testClient = "client-1"
	testSecret = "s3cret"

	agentA = "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc"
	agentB = "a1b2c3d4-0000-4000-8000-00000000000b"
	agentC = "a1b2c3d4-0000-4000-8000-00000000000c"
	agentD = "a1b2c3d4-0000-4000-8000-00000000000d"
	super  = "a1b2c3d4-0000-4000-8000-0000000000ff"
	queue1 = "67ce2258-ff62-4f8e-8467-2d79c9b98e2b"

	// wait bounds every wait for something that should happen; it is a failure bound, never a
	// measurement.
	wait = 10 * time.Second
)

func userTopic(id string) string { return "v2.users." + id + ".conversations" }

// harness is a running fake with one OAuth client and a few users.
type harness struct {
	t  *testing.T
	s  *Server
	hc *http.Client
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	s := NewServer(opts)
	s.AddClient(testClient, testSecret)
	for i, id := range []string{agentA, agentB, agentC, agentD, super} {
		s.AddUser(User{ID: id, Name: "Agent " + string(rune('A'+i)), Email: "agent" + string(rune('a'+i)) + "@example.com",
			Groups: []string{"g1"}, Queues: []string{queue1}})
	}
	h := &harness{t: t, s: s, hc: s.Client()}
	t.Cleanup(func() {
		s.Close()
		h.hc.CloseIdleConnections()
	})
	return h
}

// do sends a request; body may be nil, a string (form) or anything else (JSON).
func (h *harness) do(method, path, token string, body any) (*http.Response, []byte) {
	h.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, h.s.APIBase()+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, data
}

// decode unmarshals data into v or fails the test.
func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// tokenRequest posts form to /oauth/token with the test client's credentials.
func (h *harness) tokenRequest(form string) (*http.Response, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.s.LoginBase()+"/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClient, testSecret)
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, data
}

func (h *harness) token() string {
	h.t.Helper()
	resp, data := h.tokenRequest("grant_type=client_credentials")
	tok := decode[struct {
		AccessToken string `json:"access_token"`
	}](h.t, data)
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		h.t.Fatalf("token: HTTP %d %s", resp.StatusCode, data)
	}
	return tok.AccessToken
}

// channelJSON is the Channel model, as research §2.1 gives it.
type channelJSON struct {
	ConnectURI string `json:"connectUri"`
	ID         string `json:"id"`
	Expires    string `json:"expires"`
}

func (h *harness) channel(tok string) channelJSON {
	h.t.Helper()
	resp, data := h.do("POST", "/api/v2/notifications/channels", tok, nil)
	if resp.StatusCode != 200 {
		h.t.Fatalf("create channel: %d %s", resp.StatusCode, data)
	}
	return decode[channelJSON](h.t, data)
}

func (h *harness) subscribe(tok, channelID string, topics ...string) {
	h.t.Helper()
	body := make([]map[string]string, len(topics))
	for i, t := range topics {
		body[i] = map[string]string{"id": t}
	}
	resp, data := h.do("PUT", "/api/v2/notifications/channels/"+channelID+"/subscriptions", tok, body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("subscribe: %d %s", resp.StatusCode, data)
	}
}

// wsMsg is any server → client message: an event envelope, a channel.metadata message or a reply to a
// WebSocket-side subscribe.
type wsMsg struct {
	TopicName string          `json:"topicName"`
	Version   string          `json:"version"`
	EventBody json.RawMessage `json:"eventBody"`
	Metadata  struct {
		CorrelationID string `json:"CorrelationId"`
	} `json:"metadata"`
	Result  string `json:"result"`
	Status  string `json:"status"`
	Message string `json:"message"`
	raw     []byte
}

func (m wsMsg) heartbeat() bool {
	return m.TopicName == "channel.metadata" && strings.Contains(string(m.EventBody), "WebSocket Heartbeat")
}

// wsClient is a notification socket client that reads in the background.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	msgs   chan wsMsg
	stop   chan struct{} // closed by the test's cleanup
	done   chan struct{}
	err    error // set before done closes
	status int   // HTTP status of the upgrade response
}

func (h *harness) dial(connectURI string) (*wsClient, error) {
	h.t.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait, TLSClientConfig: h.s.TLSClientConfig()}
	conn, resp, err := d.Dial(connectURI, nil)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil {
		return &wsClient{status: status}, err
	}
	c := &wsClient{t: h.t, conn: conn, msgs: make(chan wsMsg, 1024), stop: make(chan struct{}), done: make(chan struct{}), status: status}
	go func() {
		defer close(c.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var m wsMsg
			if err := json.Unmarshal(data, &m); err != nil {
				c.err = err
				return
			}
			m.raw = data
			select {
			case c.msgs <- m:
			case <-c.stop:
				return
			}
		}
	}()
	h.t.Cleanup(func() { close(c.stop); conn.Close(); <-c.done })
	return c, nil
}

func (h *harness) mustDial(connectURI string) *wsClient {
	h.t.Helper()
	c, err := h.dial(connectURI)
	if err != nil {
		h.t.Fatalf("dial %s: %v (HTTP %d)", connectURI, err, c.status)
	}
	return c
}

// next returns the next message that is not a heartbeat.
func (c *wsClient) next() wsMsg {
	c.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m := <-c.msgs:
			if !m.heartbeat() {
				return m
			}
		case <-c.done:
			// drain what arrived before the close
			select {
			case m := <-c.msgs:
				if !m.heartbeat() {
					return m
				}
				continue
			default:
			}
			c.t.Fatalf("socket closed while waiting: %v", c.err)
		case <-timer.C:
			c.t.Fatal("no message")
		}
	}
}

// closed waits for the server to end the socket and returns the close code the client saw.
func (c *wsClient) closed() int {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(wait):
		c.t.Fatal("socket not closed")
	}
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code
	}
	c.t.Fatalf("socket ended without a close code: %v", c.err)
	return 0
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Test-side view of the conversation event body, written from research §2.6 (not from the fake's
// structs), with only what the tests look at.
type tConversation struct {
	ID              string         `json:"id"`
	Participants    []tParticipant `json:"participants"`
	RecentTransfers []struct {
		State        string `json:"state"`
		TransferType string `json:"transferType"`
		Initiator    struct {
			UserID string `json:"userId"`
		} `json:"initiator"`
		Destination struct {
			UserID  string `json:"userId"`
			Address string `json:"address"`
		} `json:"destination"`
	} `json:"recentTransfers"`
	SecurePause bool   `json:"securePause"`
	StartTime   string `json:"startTime"`
	SelfURI     string `json:"selfUri"`
}

type tParticipant struct {
	ID                     string            `json:"id"`
	Purpose                string            `json:"purpose"`
	UserID                 string            `json:"userId"`
	QueueID                string            `json:"queueId"`
	Address                string            `json:"address"`
	ConnectedTime          string            `json:"connectedTime"`
	EndTime                string            `json:"endTime"`
	ConsultParticipantID   string            `json:"consultParticipantId"`
	MonitoredParticipantID string            `json:"monitoredParticipantId"`
	WrapupRequired         bool              `json:"wrapupRequired"`
	StartAcwTime           string            `json:"startAcwTime"`
	EndAcwTime             string            `json:"endAcwTime"`
	Wrapup                 *json.RawMessage  `json:"wrapup"`
	Attributes             map[string]string `json:"attributes"`
	Calls                  []tCall           `json:"calls"`
}

type tCall struct {
	ID               string `json:"id"`
	State            string `json:"state"`
	Direction        string `json:"direction"`
	Held             *bool  `json:"held"`
	Confined         *bool  `json:"confined"`
	SecurePause      bool   `json:"securePause"`
	StartHoldTime    string `json:"startHoldTime"`
	DisconnectType   string `json:"disconnectType"`
	ConnectedTime    string `json:"connectedTime"`
	DisconnectedTime string `json:"disconnectedTime"`
	UUIData          string `json:"uuiData"`
	PeerID           string `json:"peerId"`
}

func (c tCall) held() bool     { return c.Held != nil && *c.Held }
func (c tCall) confined() bool { return c.Confined != nil && *c.Confined }

// parts returns the participants matching purpose and user ("" matches any).
func (cv tConversation) parts(purpose, user string) []tParticipant {
	var out []tParticipant
	for _, p := range cv.Participants {
		if (purpose == "" || p.Purpose == purpose) && (user == "" || p.UserID == user) {
			out = append(out, p)
		}
	}
	return out
}

// one returns the single participant matching, or fails.
func (cv tConversation) one(t *testing.T, purpose, user string) tParticipant {
	t.Helper()
	ps := cv.parts(purpose, user)
	if len(ps) != 1 {
		t.Fatalf("want one %s participant for %q, have %d", purpose, user, len(ps))
	}
	return ps[0]
}

// last returns the newest participant matching, or fails.
func (cv tConversation) last(t *testing.T, purpose, user string) tParticipant {
	t.Helper()
	ps := cv.parts(purpose, user)
	if len(ps) == 0 {
		t.Fatalf("no %s participant for %q", purpose, user)
	}
	return ps[len(ps)-1]
}

// snapshots decodes a call's published snapshots.
func snapshots(t *testing.T, s *Server, id string) []tConversation {
	t.Helper()
	var out []tConversation
	for _, b := range s.History(id) {
		out = append(out, decode[tConversation](t, b))
	}
	return out
}

// checkGoroutines fails the test if goroutines outlive it (registered first, so it runs last).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
