// Package sip is siphook's SIPREC recording server (SRS): it accepts recording sessions from SBCs over sipgo,
// keeps its own dialog table, parses multipart bodies, rs-metadata and SDP, answers inactive or recvonly and
// sends the activation re-INVITE.
package sip
