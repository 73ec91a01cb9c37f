// Package leaktest checks that tests leave no goroutine behind.
package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// Wait waits until the number of goroutines is back to baseline (taken with runtime.NumGoroutine before
// the code under test started) and fails the test, dumping the survivors' stacks, if it is not within 10 s.
func Wait(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d goroutines left, baseline %d (stacks above)", runtime.NumGoroutine(), baseline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Check is Wait for TestMain, after m.Run: it returns a non-zero exit code, after dumping the survivors'
// stacks, when goroutines are still above baseline after timeout.
func Check(baseline int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			fmt.Fprintf(os.Stderr, "leaktest: %d goroutines left after the tests, baseline %d (stacks above)\n", runtime.NumGoroutine(), baseline)
			return 1
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}
