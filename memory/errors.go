package memory

import (
	"errors"

	"github.com/jetevents/events/transport"
)

// Errors of the bus: the module's kinds, the same values as on JetStream
// (transport's ErrNoStream, ErrPublish, ErrClosed, ErrSubscribe, ...;
// envelope's ErrInvalidConfig, ErrInvalidEvent, ErrInvalidSubject,
// ErrTooLarge), so code matching events.ErrNoStream behaves the same on the
// bus; plus the bus's own below.
var (
	// ErrNoConsumer: the durable named does not exist. It is
	// transport.ErrNoConsumer, as on JetStream.
	ErrNoConsumer = transport.ErrNoConsumer
	// ErrWrongStream: the message would land in another stream than the one
	// expected (Config.DeadLetterStream).
	ErrWrongStream = errors.New("memory: expected stream does not match")
)
