// Package rtp receives recorded media: it allocates RTP port pairs, reads RTP from UDP, places packets on the recording timeline by RTP timestamp, decodes them and keeps per-stream counters.
package rtp
