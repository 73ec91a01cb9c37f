// Package genesystest is a fake Genesys Cloud for tests, the demo and the load generator: the OAuth
// client-credentials token endpoint, the Notification Service (channels, subscriptions, the streaming
// WebSocket with heartbeats, pings and system messages), users, conversations and the analytics
// conversation-details query, all on one httptest server.
//
// Its formats follow research/genesys-cti.md (§1 OAuth, §2 notifications, §2.6 the
// v2.users.{id}.conversations body, §4 REST, §6 the fake) and are written from that document, not from the
// tracker's structs, so that a misreading in the tracker is not mirrored here.
//
// Test code describes calls, not JSON: InboundCall, OutboundCall and InternalCall return a *Call whose
// methods (Answer, Hold, BlindTransfer, ConsultStart, ...) change the fake's conversation model and publish
// a full snapshot to v2.users.{userId}.conversations for every user who ever took part, and to
// v2.routing.queues.{queueId}.conversations for every queue, on every channel subscribed to those topics.
//
// Fault knobs (Fail429, Fail5xx, RevokeTokens, DropSockets, SendSocketClosing, PauseDelivery,
// ExpireChannel, Duplicate, Reorder, Drop, ...) make the service misbehave the ways research §6.3 lists.
// Every protocol duration (token and channel lifetime, heartbeat interval, socket_closing grace, event
// delay) is multiplied by Options.TimeScale, so a 24 h channel rollover can run in milliseconds.
//
// Where the research leaves a detail open, the fake picks one and says so in a comment next to it.
package genesystest
