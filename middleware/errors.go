package middleware

import (
	"errors"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// ErrInvalidConfig is matched by every configuration error of this package's
// constructors, wrapped with the field at fault.
// It is envelope.ErrInvalidConfig, the module's one configuration sentinel.
var ErrInvalidConfig = envelope.ErrInvalidConfig

// ErrPermanent is matched (errors.Is) by every error wrapped with Permanent.
var ErrPermanent = errors.New("permanent error")

// ErrDeadLetter is matched by the error returned when a message could not be
// stored in the dead-letter stream: the message was not acked; it is
// redelivered with backoff, for as long as the dead-letter stream refuses it,
// without running its handler again. It is transport.ErrDeadLetter.
var ErrDeadLetter = transport.ErrDeadLetter

// ErrNoRawMessage is returned by DeadLetterer.Send when a record has neither
// a subject nor a payload to dead-letter.
var ErrNoRawMessage = errors.New("no message to dead-letter")

// ErrStore is matched by every failure of an idempotency store operation
// (KV unreachable, bucket missing, malformed record).
var ErrStore = errors.New("idempotency store")

// ErrClaimed is returned by the idempotency middleware when another delivery
// holds a live claim on the same event and it cannot tell whether that
// delivery will settle the event: the message is retried later (Nack), never
// acked unhandled.
var ErrClaimed = errors.New("event is being handled by another delivery")

// ErrAttemptsExhausted is the cause of the dead-letter verdict Retry gives a
// delivery past MaxDeliver, without calling the handler: the handler had all
// its attempts, and the previous dead-letter publish failed.
var ErrAttemptsExhausted = errors.New("handler attempts exhausted")
