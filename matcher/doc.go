// Package matcher ties media sessions (SIPREC, AudioHook) to CTI conversations. It owns the matching keys
// (Avaya UCIDs in their hex, 20-digit and User-to-User forms; Genesys conversation ids) and, later, the pending
// tables and the decisions made when both sides of a match are known. It imports no other siphook package.
package matcher
