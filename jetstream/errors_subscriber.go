package jetstream

import "errors"

// Subscriber sentinels (to be merged into errors.go). ErrSubscriberClosed and
// ErrCloseTimeout also match the shared sentinel of their kind, so
// errors.Is(err, ErrClosed) and errors.Is(err, ErrTimeout) hold, without the
// shared sentinels' publisher wording in their text.
var (
	// ErrSubscriberClosed: Subscribe or SubscribeInitialize after Close.
	// Matches ErrClosed.
	ErrSubscriberClosed error = &kindError{msg: "jetstream subscriber closed", kind: ErrClosed}

	// ErrCloseTimeout: Close (or a canceled Subscribe ctx) reached
	// CloseTimeout with messages still in flight; they were nacked for
	// immediate redelivery, so nothing is lost. Matches ErrTimeout.
	ErrCloseTimeout error = &kindError{msg: "subscriber close deadline passed with messages in flight", kind: ErrTimeout}

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

// kindError is a sentinel with its own text that also matches a broader
// sentinel (its kind) with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
