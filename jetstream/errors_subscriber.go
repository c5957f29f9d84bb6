package jetstream

import (
	"errors"
	"fmt"
)

// Subscriber sentinels (to be merged into errors.go). Each wraps the shared
// sentinel of its kind, so errors.Is(err, ErrClosed) and errors.Is(err,
// ErrTimeout) also hold.
var (
	// ErrSubscriberClosed: Subscribe or SubscribeInitialize after Close.
	// Matches ErrClosed.
	ErrSubscriberClosed = fmt.Errorf("subscriber closed: %w", ErrClosed)

	// ErrCloseTimeout: Close (or a canceled Subscribe ctx) reached
	// CloseTimeout with messages still in flight; they were nacked for
	// immediate redelivery, so nothing is lost. Matches ErrTimeout.
	ErrCloseTimeout = fmt.Errorf("subscriber close deadline passed with messages in flight: %w", ErrTimeout)

	// ErrUndecodable wraps the Unmarshaler's error handed to OnUndecodable
	// (and logged): the message could not be turned into a Watermill message.
	ErrUndecodable = errors.New("undecodable message")

	// ErrSubscribe: the durable consumer could not be created, updated or
	// consumed (the cause is wrapped; a missing stream also matches
	// ErrNoStream).
	ErrSubscribe = errors.New("cannot subscribe")

	// ErrSettle: an ack, nak, term or in-progress could not be sent. The
	// subscriber logs it (the server redelivers after AckWait, so nothing is
	// lost).
	ErrSettle = errors.New("cannot settle message")
)
