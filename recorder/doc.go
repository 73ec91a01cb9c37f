// Package recorder writes recordings: multi-channel 16-bit WAV files placed on a sample timeline, the JSON metadata document beside each, their checksums in tamper-evident day manifests (Verify checks them), and a free-space floor below which new recordings are refused. It knows nothing of SIP, RTP or WebSockets.
package recorder
