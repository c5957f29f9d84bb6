package transport

import (
	"context"
	"time"
)

// Pauser is implemented by a Transport that can pause a durable consumer:
// JetStream's consumer pause (nats-server 2.11 or later) on the jetstream
// transport, the same on the memory bus (on its clock). A transport that does
// not implement it cannot pause; the router then answers its Pause and Resume
// with an error matching ErrUnsupported.
//
// A paused durable delivers nothing, first deliveries and redeliveries alike,
// to any process bound to it, until the time passes (it then resumes by
// itself, nobody needs to be there to resume it) or it is resumed. Pulls
// stay accepted and are answered with heartbeats meanwhile, so a bound
// consumer stays active (not stalled); messages delivered before the pause
// stay settleable, and their ack deadlines run as usual (an expired one is
// redelivered after the pause). The pause is the durable's state, kept by the
// broker: ConsumerState.PausedUntil reports it to every process, and a
// process that binds the durable again (a restart, a changed group config)
// leaves it paused.
type Pauser interface {
	// Pause stops deliveries of the durable until until. A durable already
	// paused is paused until the new time (earlier or later). Errors match
	// envelope.ErrInvalidConfig when until is not in the future (a pause
	// that would end at once is refused, not ignored), ErrNoConsumer or
	// ErrNoStream when the durable or its stream does not exist,
	// ErrUnsupported when the broker cannot pause (a nats-server older than
	// 2.11).
	Pause(ctx context.Context, stream, durable string, until time.Time) error
	// Resume delivers again at once. Resuming a durable that is not paused
	// is a success that changes nothing. Errors as Pause's.
	Resume(ctx context.Context, stream, durable string) error
}
