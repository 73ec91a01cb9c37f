package genesystest

import "testing"

// TestScenarios drives the builder and checks the snapshots it publishes, step by step.
func TestScenarios(t *testing.T) {
	tests := []struct {
		name  string
		run   func(s *Server) *Call
		count int // snapshots published
		check func(t *testing.T, all []tConversation)
	}{
		{
			name: "inbound IVR, queue, two unanswered offers, answer",
			run: func(s *Server) *Call {
				return s.InboundCall(ANI("+18125841533"), DNIS("+13129718321"), UUI("FA080019001038F725B3"),
					Attribute("ASAIUUI", "00025000160955721139")).
					IVR().Queue(queue1).NoAnswer(agentA).Decline(agentA).Answer(agentA)
			},
			// start, IVR, queue, offer+noanswer, offer+decline, offer+answer
			count: 9,
			check: func(t *testing.T, all []tConversation) {
				cv := all[len(all)-1]
				cust := cv.one(t, "customer", "")
				if cust.Address != "tel:+18125841533" || cust.Attributes["ASAIUUI"] != "00025000160955721139" ||
					cust.Calls[0].UUIData != "FA080019001038F725B3" || cust.Calls[0].State != "connected" ||
					cust.Calls[0].Direction != "inbound" {
					t.Errorf("customer %+v", cust)
				}
				if ivr := cv.one(t, "ivr", ""); ivr.Calls[0].DisconnectType != "transfer" {
					t.Errorf("ivr %+v", ivr)
				}
				if acd := cv.one(t, "acd", ""); acd.QueueID != queue1 || acd.Calls[0].DisconnectType != "transfer" {
					t.Errorf("acd %+v", acd)
				}
				agents := cv.parts("agent", agentA)
				if len(agents) != 3 {
					t.Fatalf("%d agent participants for A, want 3", len(agents))
				}
				for i, want := range []string{"transfer.noanswer", "client"} {
					a := agents[i]
					if a.Calls[0].DisconnectType != want || a.ConnectedTime != "" || a.Calls[0].ConnectedTime != "" {
						t.Errorf("offer %d: %+v", i, a)
					}
				}
				if a := agents[2]; a.Calls[0].State != "connected" || a.ConnectedTime == "" || a.QueueID != queue1 ||
					a.Calls[0].PeerID != cust.Calls[0].ID {
					t.Errorf("answered %+v", a)
				}
			},
		},
		{
			name: "hold and resume",
			run: func(s *Server) *Call {
				return s.InboundCall(Queue(queue1)).Answer(agentA).Hold(agentA).Resume(agentA)
			},
			count: 5,
			check: func(t *testing.T, all []tConversation) {
				held, resumed := all[3], all[4]
				a, c := held.one(t, "agent", agentA).Calls[0], held.one(t, "customer", "").Calls[0]
				if !a.held() || a.StartHoldTime == "" || a.confined() || !c.confined() || c.held() {
					t.Errorf("held: agent %+v customer %+v", a, c)
				}
				a, c = resumed.one(t, "agent", agentA).Calls[0], resumed.one(t, "customer", "").Calls[0]
				if a.held() || a.StartHoldTime != "" || c.confined() || a.Held == nil || c.Confined == nil {
					t.Errorf("resumed: agent %+v customer %+v", a, c)
				}
			},
		},
		{
			name: "blind transfer",
			run: func(s *Server) *Call {
				return s.InboundCall(Queue(queue1)).Answer(agentA).BlindTransfer(agentA, agentB)
			},
			count: 5,
			check: func(t *testing.T, all []tConversation) {
				mid, end := all[3], all[4]
				if a := mid.one(t, "agent", agentA); a.Calls[0].DisconnectType != "transfer" || a.Calls[0].State != "disconnected" {
					t.Errorf("A %+v", a)
				}
				if b := mid.one(t, "agent", agentB); b.Calls[0].State != "alerting" {
					t.Errorf("B while transferring %+v", b)
				}
				if b := end.one(t, "agent", agentB); b.Calls[0].State != "connected" || b.QueueID != queue1 {
					t.Errorf("B %+v", b)
				}
				tr := end.RecentTransfers
				if len(tr) != 1 || tr[0].TransferType != "unattended" || tr[0].State != "complete" ||
					tr[0].Initiator.UserID != agentA || tr[0].Destination.UserID != agentB {
					t.Errorf("recentTransfers %+v", tr)
				}
			},
		},
		{
			name: "consult then complete",
			run: func(s *Server) *Call {
				return s.InboundCall().Answer(agentA).ConsultStart(agentA, agentD).ConsultComplete()
			},
			count: 6,
			check: func(t *testing.T, all []tConversation) {
				alerting, talking, done := all[3], all[4], all[5]
				cust := alerting.one(t, "customer", "")
				d := alerting.one(t, "agent", agentD)
				if !cust.Calls[0].confined() || d.ConsultParticipantID != cust.ID || d.Calls[0].State != "alerting" {
					t.Errorf("consult alerting: customer %+v D %+v", cust, d)
				}
				if a := talking.one(t, "agent", agentA).Calls[0]; a.held() || a.State != "connected" {
					t.Errorf("A while consulting %+v", a)
				}
				if !talking.one(t, "customer", "").Calls[0].confined() || talking.one(t, "agent", agentD).Calls[0].State != "connected" {
					t.Errorf("consult connected %+v", talking)
				}
				if a := done.one(t, "agent", agentA).Calls[0]; a.DisconnectType != "transfer.consult" {
					t.Errorf("A after complete %+v", a)
				}
				if c := done.one(t, "customer", "").Calls[0]; c.confined() || c.State != "connected" {
					t.Errorf("customer after complete %+v", c)
				}
				if tr := done.RecentTransfers; len(tr) != 1 || tr[0].TransferType != "attended" || tr[0].State != "complete" {
					t.Errorf("recentTransfers %+v", tr)
				}
			},
		},
		{
			name: "consult then cancel",
			run: func(s *Server) *Call {
				return s.InboundCall().Answer(agentA).ConsultStart(agentA, agentD).ConsultCancel()
			},
			count: 6,
			check: func(t *testing.T, all []tConversation) {
				end := all[5]
				if d := end.one(t, "agent", agentD).Calls[0]; d.State != "disconnected" || d.DisconnectType != "peer" {
					t.Errorf("D %+v", d)
				}
				if c := end.one(t, "customer", "").Calls[0]; c.confined() {
					t.Errorf("customer still confined")
				}
				if a := end.one(t, "agent", agentA).Calls[0]; a.State != "connected" {
					t.Errorf("A %+v", a)
				}
				if tr := end.RecentTransfers; tr[0].State != "canceled" {
					t.Errorf("transfer state %q", tr[0].State)
				}
			},
		},
		{
			name: "consult then conference, then one agent leaves",
			run: func(s *Server) *Call {
				return s.InboundCall().Answer(agentA).ConsultStart(agentA, agentD).ConsultConference().AgentHangup(agentA)
			},
			count: 7,
			check: func(t *testing.T, all []tConversation) {
				conf, after := all[5], all[6]
				ds := conf.parts("agent", agentD)
				if len(ds) != 2 || ds[0].Calls[0].DisconnectType != "transfer.conference" ||
					ds[1].Calls[0].State != "connected" || ds[1].ConsultParticipantID != "" {
					t.Errorf("D participants %+v", ds)
				}
				for _, p := range []tParticipant{conf.one(t, "agent", agentA), conf.one(t, "customer", ""), ds[1]} {
					if c := p.Calls[0]; c.State != "connected" || c.held() || c.confined() {
						t.Errorf("%s %s in conference: %+v", p.Purpose, p.UserID, c)
					}
				}
				if a := after.one(t, "agent", agentA).Calls[0]; a.DisconnectType != "client" {
					t.Errorf("A after hangup %+v", a)
				}
				if c := after.one(t, "customer", "").Calls[0]; c.State != "connected" {
					t.Errorf("customer left with A: %+v", c)
				}
			},
		},
		{
			name: "outbound dialing, contacting, connected",
			run: func(s *Server) *Call {
				return s.OutboundCall(agentA, DNIS("+18125841533")).RemoteAnswer()
			},
			count: 3,
			check: func(t *testing.T, all []tConversation) {
				if u := all[0].one(t, "user", agentA).Calls[0]; u.State != "dialing" || u.Direction != "outbound" || len(all[0].Participants) != 1 {
					t.Errorf("dialing %+v", all[0])
				}
				if e := all[1].one(t, "external", ""); e.Address != "tel:+18125841533" || e.Calls[0].State != "contacting" ||
					all[1].one(t, "user", agentA).Calls[0].State != "contacting" {
					t.Errorf("contacting %+v", all[1])
				}
				for _, p := range all[2].Participants {
					if p.Calls[0].State != "connected" {
						t.Errorf("%s not connected", p.Purpose)
					}
				}
			},
		},
		{
			name:  "outbound not answered",
			run:   func(s *Server) *Call { return s.OutboundCall(agentA).RemoteNoAnswer() },
			count: 3,
			check: func(t *testing.T, all []tConversation) {
				end := all[2]
				if u := end.one(t, "user", agentA).Calls[0]; u.DisconnectType != "peer" || u.ConnectedTime != "" {
					t.Errorf("agent %+v", u)
				}
				if e := end.one(t, "external", "").Calls[0]; e.DisconnectType != "timeout" {
					t.Errorf("external %+v", e)
				}
			},
		},
		{
			name: "internal call",
			run: func(s *Server) *Call {
				return s.InternalCall(agentA, agentB).Answer(agentB).Hold(agentA).AgentHangup(agentB)
			},
			count: 4,
			check: func(t *testing.T, all []tConversation) {
				if len(all[1].parts("customer", "")) != 0 || len(all[1].parts("external", "")) != 0 {
					t.Errorf("internal call has a customer")
				}
				if a, b := all[1].one(t, "user", agentA).Calls[0], all[1].one(t, "agent", agentB).Calls[0]; a.State != "connected" || b.State != "connected" {
					t.Errorf("answered: %+v %+v", a, b)
				}
				if b := all[2].one(t, "agent", agentB).Calls[0]; !b.confined() {
					t.Errorf("B does not hear hold music: %+v", b)
				}
				if a := all[3].one(t, "user", agentA).Calls[0]; a.DisconnectType != "peer" {
					t.Errorf("A after B hung up %+v", a)
				}
			},
		},
		{
			name: "monitor, secure pause, late UUI and attribute",
			run: func(s *Server) *Call {
				return s.InboundCall().Answer(agentA).Monitor(super).SecurePause(true).SetUUI("late-uui").
					SetAttribute("ASAIUUI", "00025000160955721139").SecurePause(false)
			},
			count: 8,
			check: func(t *testing.T, all []tConversation) {
				a := all[2].one(t, "agent", agentA)
				if m := all[3].one(t, "user", super); m.MonitoredParticipantID != a.ID || m.Calls[0].State != "connected" {
					t.Errorf("monitor %+v", m)
				}
				if !all[4].SecurePause || !all[4].one(t, "agent", agentA).Calls[0].SecurePause {
					t.Errorf("secure pause not set")
				}
				if all[2].one(t, "customer", "").Calls[0].UUIData != "" || all[5].one(t, "customer", "").Calls[0].UUIData != "late-uui" {
					t.Errorf("late UUI")
				}
				last := all[7]
				if last.SecurePause || last.one(t, "customer", "").Attributes["ASAIUUI"] != "00025000160955721139" {
					t.Errorf("last %+v", last)
				}
			},
		},
		{
			name: "customer hangs up, agent wraps up",
			run: func(s *Server) *Call {
				return s.InboundCall(Queue(queue1)).Answer(agentA).CustomerHangup().Wrapup(agentA)
			},
			count: 5,
			check: func(t *testing.T, all []tConversation) {
				ended, wrapped := all[3], all[4]
				if c := ended.one(t, "customer", "").Calls[0]; c.DisconnectType != "endpoint" || c.DisconnectedTime == "" {
					t.Errorf("customer %+v", c)
				}
				a := ended.one(t, "agent", agentA)
				if a.Calls[0].DisconnectType != "peer" || !a.WrapupRequired || a.StartAcwTime == "" || a.Wrapup != nil {
					t.Errorf("agent %+v", a)
				}
				a = wrapped.one(t, "agent", agentA)
				if a.Calls[0].State != "terminated" || a.Wrapup == nil || a.EndAcwTime == "" {
					t.Errorf("wrapped %+v", a)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(Options{})
			defer s.Close()
			c := tt.run(s)
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			all := snapshots(t, s, c.ID())
			if len(all) != tt.count {
				t.Fatalf("%d snapshots, want %d", len(all), tt.count)
			}
			for _, cv := range all {
				if cv.ID != c.ID() {
					t.Fatalf("snapshot of %s", cv.ID)
				}
			}
			tt.check(t, all)
		})
	}
}

func TestMisuseIsReportedNotPublished(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	c := s.InboundCall()
	c.Hold(agentA).ConsultComplete()
	if c.Err() == nil {
		t.Fatal("Hold of an agent not on the call was accepted")
	}
	if n := len(s.History(c.ID())); n != 1 {
		t.Errorf("%d snapshots, want only the first", n)
	}
}

func TestSnapshotIsTheRESTBody(t *testing.T) {
	h := newHarness(t, Options{})
	tok := h.token()
	c := h.s.InboundCall(UUI("FA080019001038F725B3")).Answer(agentA).Hold(agentA)
	resp, data := h.do("GET", "/api/v2/conversations/"+c.ID(), tok, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET conversation: %d %s", resp.StatusCode, data)
	}
	cv := decode[tConversation](t, data)
	if cv.ID != c.ID() || cv.SelfURI != "/api/v2/conversations/"+c.ID() || cv.StartTime == "" ||
		!cv.one(t, "agent", agentA).Calls[0].held() {
		t.Errorf("REST body %s", data)
	}
	if string(h.s.Snapshot(c.ID())) != string(data) {
		t.Errorf("Snapshot differs from GET")
	}
	if resp, _ := h.do("GET", "/api/v2/conversations/00000000-0000-0000-0000-000000000000", tok, nil); resp.StatusCode != 404 {
		t.Errorf("unknown conversation: %d", resp.StatusCode)
	}
	if h.s.Snapshot("nope") != nil {
		t.Error("Snapshot of an unknown conversation")
	}

	// The flattened /calls/ view carries the call fields and uuiData on the participant.
	resp, data = h.do("GET", "/api/v2/conversations/calls/"+c.ID(), tok, nil)
	flat := decode[struct {
		ID           string `json:"id"`
		Participants []struct {
			Purpose       string `json:"purpose"`
			State         string `json:"state"`
			Held          bool   `json:"held"`
			StartHoldTime string `json:"startHoldTime"`
			UUIData       string `json:"uuiData"`
			User          *struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"participants"`
	}](t, data)
	if resp.StatusCode != 200 || flat.ID != c.ID() || len(flat.Participants) != 2 ||
		flat.Participants[0].UUIData != "FA080019001038F725B3" ||
		!flat.Participants[1].Held || flat.Participants[1].StartHoldTime == "" || flat.Participants[1].User.ID != agentA {
		t.Errorf("calls view %d %s", resp.StatusCode, data)
	}
}

func TestTruth(t *testing.T) {
	tracked := []string{agentA, agentD}
	tests := []struct {
		name string
		run  func(s *Server) *Call
		want string
	}{
		{"unknown", func(s *Server) *Call { return &Call{s: s, cv: &conversation{id: "nope"}} }, TruthNone},
		{"in IVR", func(s *Server) *Call { return s.InboundCall().IVR() }, TruthNone},
		{"alerting", func(s *Server) *Call { return s.InboundCall(Queue(queue1)).Offer(agentA) }, TruthNone},
		{"connected", func(s *Server) *Call { return s.InboundCall().Answer(agentA) }, TruthActive},
		{"untracked agent", func(s *Server) *Call { return s.InboundCall().Answer(agentB) }, TruthNone},
		{"held", func(s *Server) *Call { return s.InboundCall().Answer(agentA).Hold(agentA) }, TruthHeld},
		{"resumed", func(s *Server) *Call { return s.InboundCall().Answer(agentA).Hold(agentA).Resume(agentA) }, TruthActive},
		{"secure pause", func(s *Server) *Call { return s.InboundCall().Answer(agentA).SecurePause(true) }, TruthHeld},
		{"consulting", func(s *Server) *Call { return s.InboundCall().Answer(agentA).ConsultStart(agentA, agentB) }, TruthHeld},
		{"conference, one holds", func(s *Server) *Call {
			return s.InboundCall().Answer(agentA).ConsultStart(agentA, agentD).ConsultConference().Hold(agentA)
		}, TruthActive},
		{"transferred to untracked", func(s *Server) *Call { return s.InboundCall().Answer(agentA).BlindTransfer(agentA, agentB) }, TruthEnded},
		{"transferred to tracked", func(s *Server) *Call { return s.InboundCall().Answer(agentB).BlindTransfer(agentB, agentA) }, TruthActive},
		{"customer hung up", func(s *Server) *Call { return s.InboundCall().Answer(agentA).CustomerHangup() }, TruthEnded},
		{"monitor only", func(s *Server) *Call { return s.InboundCall().Answer(agentB).Monitor(agentA) }, TruthNone},
		{"internal", func(s *Server) *Call { return s.InternalCall(agentA, agentD).Answer(agentD) }, TruthNone},
		{"outbound", func(s *Server) *Call { return s.OutboundCall(agentA).RemoteAnswer() }, TruthActive},
		{"outbound ringing", func(s *Server) *Call { return s.OutboundCall(agentA) }, TruthNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(Options{})
			defer s.Close()
			c := tt.run(s)
			if got := s.Truth(c.ID(), tracked); got != tt.want {
				t.Errorf("Truth %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSeedMakesIDsReproducible(t *testing.T) {
	ids := func() []string {
		s := NewServer(Options{Seed: 42})
		defer s.Close()
		s.AddClient(testClient, testSecret)
		c := s.InboundCall().Answer(agentA)
		return []string{c.ID(), s.CreateForeignChannels(testClient, 1)[0]}
	}
	a, b := ids(), ids()
	if a[0] != b[0] || a[1] != b[1] {
		t.Errorf("ids differ with the same seed: %v %v", a, b)
	}
}
