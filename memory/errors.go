package memory

import (
	"errors"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// Errors of the bus. They mirror the jetstream package's sentinels by name
// and meaning. ErrNoStream, ErrPublish and ErrClosed match the transport's
// shared sentinels (as jetstream's do), so code matching events.ErrNoStream,
// events.ErrPublish or events.ErrClosed behaves the same on the bus; the
// envelope sentinels (ErrInvalidSubject, ErrInvalidEvent, ErrTooLarge) and
// ErrInvalidConfig are the module's own.
var (
	// ErrInvalidConfig is matched by every configuration error: bus, stream,
	// consumer, publisher and subscriber configs.
	ErrInvalidConfig = envelope.ErrInvalidConfig
	// ErrNoStream: no stream listens on the subject published to, or the
	// stream named does not exist.
	ErrNoStream error = &kindError{msg: "memory: no stream listens on subject", kind: transport.ErrNoStream}
	// ErrNoConsumer: the durable named does not exist.
	ErrNoConsumer = errors.New("memory: no such durable consumer")
	// ErrStreamOverlap: a stream's subjects overlap another stream's (as
	// JetStream, the bus refuses them: a subject is stored by one stream).
	ErrStreamOverlap = errors.New("memory: subjects overlap another stream")
	// ErrWrongStream: the message would land in another stream than the one
	// expected (Config.DeadLetterStream).
	ErrWrongStream = errors.New("memory: expected stream does not match")
	// ErrPublish is matched by every publish that passed validation but was
	// not stored (no stream, too large for the bus, closed bus).
	ErrPublish error = &kindError{msg: "memory: publish failed", kind: transport.ErrPublish}
	// ErrClosed: the bus, the publisher or the subscriber was closed.
	ErrClosed error = &kindError{msg: "memory: closed", kind: transport.ErrClosed}
	// ErrSubscribe is matched by every consume or subscribe setup error.
	ErrSubscribe = errors.New("memory: subscribe failed")
	// ErrNotSent: a batch event that was valid but not sent because another
	// event of the same batch failed validation.
	ErrNotSent = errors.New("memory: event not sent")
)

// Scheduled, expiring and atomic publishes: the transport's shared
// sentinels, the same values as jetstream's and events', so that a
// service's code matching them behaves the same on the bus.
var (
	// ErrInvalidOption: a publish option or JetStream header is invalid.
	ErrInvalidOption = transport.ErrInvalidOption
	// ErrSchedulesDisabled, ErrTTLDisabled, ErrAtomicDisabled: the stream
	// does not allow message schedules, per-message TTL or atomic batches
	// (StreamConfig.AllowMsgSchedules, AllowMsgTTL, AllowAtomicPublish);
	// the error names the stream.
	ErrSchedulesDisabled = transport.ErrSchedulesDisabled
	ErrTTLDisabled       = transport.ErrTTLDisabled
	ErrAtomicDisabled    = transport.ErrAtomicDisabled
	// ErrConflict is matched by a *transport.ConflictError: an expected
	// last sequence did not hold.
	ErrConflict = transport.ErrConflict
	// ErrBatchAbandoned: an atomic batch was not stored (its events span
	// two streams, or the bus closed).
	ErrBatchAbandoned = transport.ErrBatchAbandoned
	// ErrBatchTooLarge: more than transport.MaxAtomicBatch events.
	ErrBatchTooLarge = transport.ErrBatchTooLarge
	// ErrBatchDuplicate: an atomic batch holds an event already stored.
	ErrBatchDuplicate = transport.ErrBatchDuplicate
	// ErrScheduleNotFound: CancelSchedule found no pending schedule.
	ErrScheduleNotFound = transport.ErrScheduleNotFound
	// ErrUnsupported: a publish carries a JetStream header the bus does not
	// implement (see the package doc).
	ErrUnsupported = transport.ErrUnsupported
)

// Shared sentinels, matched by the same errors as in the jetstream package.
var (
	// ErrInvalidSubject: a subject is not valid (for Publisher: not
	// dot-separated [A-Za-z0-9_-] tokens).
	ErrInvalidSubject = envelope.ErrInvalidSubject
	// ErrInvalidEvent: the event breaks an envelope rule.
	ErrInvalidEvent = envelope.ErrInvalidEvent
	// ErrTooLarge: the message (headers and data) is larger than the bus's
	// MaxPayload, or the event larger than the marshaler's MaxSize.
	ErrTooLarge = envelope.ErrTooLarge
	// ErrConsumerEnded is matched by Consumer.Err when the consumer ended
	// for good (its stream was deleted, EndConsumer, the bus closed).
	ErrConsumerEnded = transport.ErrConsumerEnded
)

// kindError is a sentinel with its own text that also matches a shared
// sentinel (its kind) with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.kind }
