package genesystest_test

import (
	"fmt"
	"time"

	"github.com/siphook/siphook/cti/genesys/genesystest"
)

// A tracker test sets up the fake, points the tracker at APIBase and LoginBase, and then plays calls.
// Timestamps differ per run, so the example prints the derived state only.
func Example() {
	fake := genesystest.NewServer(genesystest.Options{TimeScale: 0.001}) // a 24 h channel lasts 86.4 s
	defer fake.Close()
	fake.AddClient("client-id", "secret")
	agent := "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc"
	fake.AddUser(genesystest.User{ID: agent, Name: "Agent A", Email: "a@example.com"})

	// ... start the tracker with fake.APIBase(), fake.LoginBase(), client-id/secret, tracking agent ...

	call := fake.InboundCall(genesystest.ANI("+18125841533"), genesystest.UUI("FA080019001038F725B3"))
	call.IVR().Queue("67ce2258-ff62-4f8e-8467-2d79c9b98e2b").NoAnswer(agent).Answer(agent)
	fmt.Println(fake.Truth(call.ID(), []string{agent}))
	call.Hold(agent)
	fmt.Println(fake.Truth(call.ID(), []string{agent}))

	fake.DropSockets(1006)                              // the tracker must reconnect and reconcile ...
	fake.Fail429("/api/v2/analytics", 1, 3*time.Second) // ... through a rate limit
	call.Resume(agent).CustomerHangup()
	fmt.Println(fake.Truth(call.ID(), []string{agent}), call.Err())
	// Output:
	// ACTIVE
	// HELD
	// ENDED <nil>
}
