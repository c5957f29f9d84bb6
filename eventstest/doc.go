// Package eventstest is the test kit of jetevents: an embedded JetStream
// server per test (NewServer), with a connected client, cleaned up when the
// test ends, and a fake clock. It imports nats-server, so only tests,
// examples and the embedded default import it.
package eventstest
