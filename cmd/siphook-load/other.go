//go:build !linux

// Command siphook-load is siphook's load generator. It measures the server through /proc and sends RTP with
// sendmmsg(2): Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "siphook-load: Linux only (/proc, sendmmsg)")
	os.Exit(2)
}
