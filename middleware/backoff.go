package middleware

import "github.com/jetevents/events/transport"

// Backoff is the module's one retry schedule (transport.Backoff): the delay
// before delivery attempt+1 after attempt failed, exponential with jitter.
// The zero value is the default schedule: 1s, 2s, 4s, ... capped at 1m, ±20%.
type Backoff = transport.Backoff

// Default Backoff values (transport's).
const (
	DefaultBackoffInitial    = transport.DefaultBackoffInitial
	DefaultBackoffMax        = transport.DefaultBackoffMax
	DefaultBackoffMultiplier = transport.DefaultBackoffMultiplier
	DefaultBackoffJitter     = transport.DefaultBackoffJitter
)
