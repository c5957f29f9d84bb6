package transport

import "time"

// The defaults of a durable consumer, shared by every package that makes
// one: the router's groups, the Watermill Subscriber, the memory bus and the
// stream specs. JetStream's own defaults where it has one.
const (
	// DefaultAckWait is how long the broker waits for a settlement or a
	// lease renewal before redelivering (JetStream's default).
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending caps a durable's delivered and unsettled
	// messages across every process bound to it (JetStream's default).
	DefaultMaxAckPending = 1000
	// DefaultConcurrency is the number of a group's messages handled at
	// once: 1, so that stream order is kept while nothing fails.
	DefaultConcurrency = 1
	// DefaultCloseTimeout bounds how long a stop waits for in-flight
	// handlers.
	DefaultCloseTimeout = 30 * time.Second
)
