package memory

import (
	"errors"
)

// Errors of the bus: the module's kinds, the same values as on JetStream
// (transport's ErrNoStream, ErrPublish, ErrClosed, ErrSubscribe, ...;
// envelope's ErrInvalidConfig, ErrInvalidEvent, ErrInvalidSubject,
// ErrTooLarge), so code matching events.ErrNoStream behaves the same on the
// bus; plus the bus's own below.
var (
	// ErrNoConsumer: the durable named does not exist.
	ErrNoConsumer = errors.New("memory: no such durable consumer")
	// ErrWrongStream: the message would land in another stream than the one
	// expected (Config.DeadLetterStream).
	ErrWrongStream = errors.New("memory: expected stream does not match")
)
