package middleware

import (
	"errors"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// Reasons a message is dead-lettered, written in the HeaderReason header.
const (
	// ReasonHandlerError: a handler or router verdict (DeadLetter) without a
	// more specific reason.
	ReasonHandlerError = "handler_error"
	// ReasonPermanent: the handler returned a Permanent error.
	ReasonPermanent = "permanent"
	// ReasonMaxDeliver: the handler failed on the consumer's last delivery.
	ReasonMaxDeliver = "max_deliver"
	// ReasonUnmarshal: the message could not be decoded into an event, or its
	// data into the handler's type.
	ReasonUnmarshal = "unmarshal"
	// ReasonSchemaVersion: the event's schema major version is not accepted.
	ReasonSchemaVersion = "schema_version"
	// ReasonUnknownType: no handler for the event type and the router is
	// configured to dead-letter unknown types.
	ReasonUnknownType = "unknown_type"
)

// DeadLetterError is a verdict: the message goes to the dead-letter stream
// with Reason instead of being retried. Handlers and the router return it
// through DeadLetter; Retry returns it on the last delivery; the
// DeadLetterer middleware publishes it.
type DeadLetterError struct {
	// Reason is written in the HeaderReason header; ReasonHandlerError if empty.
	Reason string
	// Err is the cause, written in the HeaderError header.
	Err error
}

// Error returns the cause's text prefixed with the reason.
func (e *DeadLetterError) Error() string {
	if e.Err == nil {
		return "dead-letter (" + e.reason() + ")"
	}
	return "dead-letter (" + e.reason() + "): " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DeadLetterError) Unwrap() error { return e.Err }

func (e *DeadLetterError) reason() string {
	if e.Reason == "" {
		return ReasonHandlerError
	}
	return e.Reason
}

// DeadLetter returns the verdict "dead-letter this message with reason",
// wrapping err (which may be nil). The router uses it for unaccepted schema
// majors (ReasonSchemaVersion) and unknown types; a handler may use it
// instead of Permanent to give its own reason.
func DeadLetter(reason string, err error) error {
	return &DeadLetterError{Reason: reason, Err: err}
}

// Classify returns the dead-letter reason err carries, and false when err is
// an ordinary (retryable) error. In order: a DeadLetterError's reason, then
// ReasonPermanent for Permanent errors, ReasonSchemaVersion for
// marshaler.ErrUnknownSchemaMajor, ReasonUnmarshal for marshaler.ErrUnmarshal
// and envelope.ErrDataDecode (a payload does not become valid by retrying).
func Classify(err error) (reason string, deadLetter bool) {
	if err == nil {
		return "", false
	}
	var dl *DeadLetterError
	switch {
	case errors.As(err, &dl):
		return dl.reason(), true
	case IsPermanent(err):
		return ReasonPermanent, true
	case errors.Is(err, marshaler.ErrUnknownSchemaMajor):
		return ReasonSchemaVersion, true
	case errors.Is(err, marshaler.ErrUnmarshal), errors.Is(err, envelope.ErrDataDecode):
		return ReasonUnmarshal, true
	}
	return "", false
}
