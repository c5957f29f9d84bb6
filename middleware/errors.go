package middleware

import "errors"

// ErrInvalidConfig is matched by every configuration error of this package's
// constructors, wrapped with the field at fault.
var ErrInvalidConfig = errors.New("middleware: invalid config")

// ErrPermanent is matched (errors.Is) by every error wrapped with Permanent.
var ErrPermanent = errors.New("permanent error")

// ErrDeadLetter is matched by the error returned when a message could not be
// stored in the dead-letter stream: the message was not acked and will be
// redelivered (or, on its last delivery, caught by the advisory watcher).
var ErrDeadLetter = errors.New("dead-letter publish failed")

// ErrNoRawMessage is returned by DeadLetterer.Send when a record has neither
// a subject nor a payload to dead-letter.
var ErrNoRawMessage = errors.New("no message to dead-letter")

// ErrAdvisory is matched by every failure of the advisory watcher to turn a
// MAX_DELIVERIES advisory into a dead letter: unparsable advisory, message
// not fetchable by stream sequence, dead-letter publish failure.
var ErrAdvisory = errors.New("max-deliveries advisory not dead-lettered")

// ErrMessageGone is matched (with ErrAdvisory) when the stream no longer holds
// the message an advisory names (deleted, expired by MaxAge, purged).
var ErrMessageGone = errors.New("message no longer in stream")

// ErrAlreadyStarted and ErrNotStarted are returned by AdvisoryWatcher.Start
// and Stop used out of order.
var (
	ErrAlreadyStarted = errors.New("advisory watcher already started")
	ErrNotStarted     = errors.New("advisory watcher not started")
)

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
