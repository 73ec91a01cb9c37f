// Package recorder writes recordings: multi-channel 16-bit WAV files placed on a sample timeline, and the JSON metadata document beside each. It knows nothing of SIP, RTP or WebSockets.
package recorder
