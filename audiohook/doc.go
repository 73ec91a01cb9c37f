// Package audiohook is siphook's Genesys Cloud AudioHook server: it verifies signed WebSocket upgrades, runs
// the AudioHook protocol (Monitor profile) for each session and records its audio. It imports recorder and
// matcher only.
package audiohook
