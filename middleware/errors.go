package middleware

import (
	"errors"
)

// ErrPermanent is matched (errors.Is) by every error wrapped with Permanent.
var ErrPermanent = errors.New("permanent error")

// ErrNoRawMessage is returned by DeadLetterer.Send when a record has neither
// a subject nor a payload to dead-letter.
var ErrNoRawMessage = errors.New("no message to dead-letter")

// ErrClaimed is returned by the idempotency middleware when another delivery
// holds a live claim on the same event and it cannot tell whether that
// delivery will settle the event: the message is retried later (Nack), never
// acked unhandled.
var ErrClaimed = errors.New("event is being handled by another delivery")

// ErrAttemptsExhausted is the cause of the dead-letter verdict Retry gives a
// delivery past MaxDeliver, without calling the handler: the handler had all
// its attempts, and the previous dead-letter publish failed.
var ErrAttemptsExhausted = errors.New("handler attempts exhausted")
