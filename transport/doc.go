// Package transport is the seam between the router and the brokers it runs
// on: what a held message is (Delivery), how it is settled (Settler), how a
// group's messages arrive (Transport.Consume with credit-based flow), and how
// a dead letter is stored (Transport.PublishDeadLetter).
//
// In the package map of the README it sits under middleware and router and above
// envelope: the jetstream package implements it for production, the memory
// package for tests with no server. Middleware reads the delivery view from a
// message's context (FromContext), never a *nats.Conn, so the same stack runs
// on both.
//
// What the publishers of both transports share lives here too, so that a
// service's code reads and behaves the same on either: the publish options
// (publish_options.go: At, After, Cron, Every, InTimeZone, TTL,
// ExpectLastSequence) and the JetStream headers they become (schedule.go),
// the schedule grammar of nats-server (cron.go), AtomicEvent and AtomicAck
// (atomic.go), and their errors (errors.go).
//
// A transport that can pause a durable (JetStream's consumer pause, the
// memory bus's) implements Pauser (pause.go) as well; the router's Pause and
// Resume use it.
//
// Credit is how "anything held is leased" is kept: a Consumer delivers at most
// the credit it was given, the router gives one credit back per settled
// message, and the router renews (InProgress) every message it holds, queued
// or in a handler, until it settles it. Nothing is fetched that cannot be held.
package transport
