package jetstream

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// Publish failures. Every error returned by a publish after the event was
// handed to NATS matches ErrPublish, together with the more specific sentinel
// below when one applies (ErrNoStream, ErrTimeout, ErrTooLarge). Validation
// failures (ErrInvalidEvent, ErrInvalidSubject) do not match ErrPublish:
// nothing was sent.
var (
	// ErrPublish is matched by every publish that was sent but not confirmed
	// by the stream: no stream, ack timeout, connection lost before the ack,
	// an error reply from the server. The event may or may not be stored;
	// publishing the same event again is safe inside the stream's duplicates
	// window (Nats-Msg-Id is the event id).
	ErrPublish error = &kindError{msg: "jetstream publish failed", kind: transport.ErrPublish}

	// ErrNoStream: no stream listens on the subject (NATS "no responders").
	// The most common first-run mistake; the message names the subject.
	ErrNoStream = transport.ErrNoStream

	// ErrNoJetStream: the server has no JetStream (started without -js),
	// or the account has none, or no JetStream answers in the domain asked
	// for. Every entry point that needs JetStream reports it (publishes,
	// Apply and Ensure, Transport.Consume and so the router's Run,
	// Subscriber.Subscribe), never as ErrNoStream; the message ends with
	// what to do: start nats-server with JetStream (-js).
	ErrNoJetStream = errors.New("no JetStream on the server")

	// ErrTimeout: the ack did not arrive before the context's deadline, the
	// publisher's timeout, or the async ack timeout; or a wait for a free
	// pending slot ended with the context's deadline. The subscriber's
	// ErrCloseTimeout matches it too.
	ErrTimeout = errors.New("jetstream: timed out")

	// ErrClosed: the publisher (or, as ErrSubscriberClosed, the subscriber)
	// was closed.
	ErrClosed error = &kindError{msg: "jetstream: closed", kind: transport.ErrClosed}

	// ErrTooManyPending: PublishAsync (or a batch) could not queue an event
	// because MaxPending acks were outstanding until the context ended. It is
	// matched together with ErrTimeout when the context's deadline passed.
	ErrTooManyPending = errors.New("too many pending jetstream acks")

	// ErrNotSent: a batch event that was valid but not sent because another
	// event of the same batch failed validation (a batch is validated as a
	// whole before anything is sent).
	ErrNotSent = errors.New("event not sent")
)

// noJetStreamAdvice ends every ErrNoJetStream error: what to do about it.
const noJetStreamAdvice = "start nats-server with JetStream (-js), or give the account JetStream limits; with a JetStream domain, check it (nats account info)"

// jetStreamMissing reports whether err, the error of a JetStream API request
// ($JS.API...), says that no JetStream serves the request: the server's "not
// enabled" errors (for the server or the account), or nobody answering the
// API at all. A publish's "no responders" is not such an error: on a server
// with JetStream it means that no stream stores the subject (see
// Publisher.noJetStream).
func jetStreamMissing(err error) bool {
	return errors.Is(err, natsjs.ErrJetStreamNotEnabled) || errors.Is(err, natsjs.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders)
}

// explainNoJetStream returns err, the error of a JetStream API request,
// wrapped with ErrNoJetStream and what to do when it says that JetStream is
// not there (jetStreamMissing); any other error is returned as it is.
func explainNoJetStream(err error) error {
	if err == nil || errors.Is(err, ErrNoJetStream) || !jetStreamMissing(err) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrNoJetStream, noJetStreamAdvice, err)
}

// Scheduled, expiring and atomic publishes: the transport's shared
// sentinels (see transport/errors.go), so that the memory bus's errors
// match them too. Each refusal of the server also matches ErrPublish.
var (
	// ErrInvalidOption: a publish option is invalid; nothing was sent.
	ErrInvalidOption = transport.ErrInvalidOption
	// ErrSchedulesDisabled: the stream does not allow message schedules
	// (the message names it and the fix: StreamSpec.AllowMsgSchedules).
	ErrSchedulesDisabled = transport.ErrSchedulesDisabled
	// ErrTTLDisabled: the stream does not allow per-message TTL
	// (StreamSpec.AllowMsgTTL).
	ErrTTLDisabled = transport.ErrTTLDisabled
	// ErrAtomicDisabled: the stream does not allow atomic batches
	// (StreamSpec.AllowAtomicPublish).
	ErrAtomicDisabled = transport.ErrAtomicDisabled
	// ErrConflict is matched by a *ConflictError (ExpectLastSequence).
	ErrConflict = transport.ErrConflict
	// ErrBatchAbandoned: the server abandoned an atomic batch; nothing of
	// it was stored.
	ErrBatchAbandoned = transport.ErrBatchAbandoned
	// ErrBatchTooLarge: an atomic batch over the server's limit.
	ErrBatchTooLarge = transport.ErrBatchTooLarge
	// ErrBatchDuplicate: an atomic batch holds an event already stored.
	ErrBatchDuplicate = transport.ErrBatchDuplicate
	// ErrScheduleNotFound: CancelSchedule found no pending schedule.
	ErrScheduleNotFound = transport.ErrScheduleNotFound
)

// Re-exported envelope sentinels that the publisher's errors match.
var (
	// ErrInvalidSubject: the subject is not a concrete NATS subject (empty
	// token, space, or a wildcard '*' / '>').
	ErrInvalidSubject = envelope.ErrInvalidSubject
	// ErrInvalidEvent: the event breaks an envelope rule (see envelope.Validate).
	ErrInvalidEvent = envelope.ErrInvalidEvent
	// ErrTooLarge: the encoded event is larger than the marshaler's MaxSize
	// or the connection's max payload (refused before sending, with
	// ErrInvalidEvent, by every publish path), or the stream's max message
	// size (reported by the server, with ErrPublish).
	ErrTooLarge = envelope.ErrTooLarge
)

// ErrInvalidConfig is matched by every configuration error of this package:
// connect options, publisher options, stream and consumer specs.
// It is envelope.ErrInvalidConfig, the module's one configuration sentinel.
var ErrInvalidConfig = envelope.ErrInvalidConfig

// Stream and consumer spec failures. Every Validate error matches
// ErrInvalidSpec and ErrInvalidConfig, and the rule's own sentinel when there
// is one.
var (
	// ErrInvalidSpec is matched by every StreamSpec / ConsumerSpec / spec file error.
	ErrInvalidSpec = errors.New("invalid stream or consumer spec")
	// ErrInvalidName: a stream or durable name is empty or contains '.', '*',
	// '>', whitespace, a path separator or a non-printable character.
	ErrInvalidName = transport.ErrInvalidName
	// ErrBackOffTooLong: a consumer's BackOff has more entries than MaxDeliver.
	ErrBackOffTooLong = errors.New("backoff has more entries than max deliver")
	// ErrDuplicatesWindow: a stream's duplicates window is longer than its max age.
	ErrDuplicatesWindow = errors.New("duplicates window longer than max age")
)

// ErrApply is matched by every error Apply gets from the server while
// creating or updating a stream or consumer (the server's error is kept:
// errors.Is / errors.As on natsjs errors work).
var ErrApply = errors.New("cannot apply stream or consumer spec")

// ErrSubjectsOverlap: Apply could not create or update a stream because
// another stream already stores some of its subjects (a message is stored by
// one stream only). Matched together with ErrApply; the message names the
// other stream.
var ErrSubjectsOverlap = errors.New("subjects overlap with another stream")

// Subscriber failures. ErrSubscriberClosed and ErrCloseTimeout also match the
// shared sentinel of their kind, so errors.Is(err, ErrClosed) and
// errors.Is(err, ErrTimeout) hold for publisher and subscriber alike.
var (
	// ErrSubscriberClosed: Subscribe or SubscribeInitialize after Close.
	// Matches ErrClosed.
	ErrSubscriberClosed error = &kindError{msg: "jetstream subscriber closed", kind: ErrClosed}

	// ErrCloseTimeout: Close (or a canceled Subscribe ctx) reached
	// CloseTimeout with messages still in flight; they were nacked for
	// immediate redelivery, so nothing is lost. Matches ErrTimeout.
	ErrCloseTimeout = transport.ErrCloseTimeout

	// ErrUndecodable wraps the Unmarshaler's error handed to OnUndecodable
	// (and logged): the message could not be turned into a Watermill message.
	ErrUndecodable = errors.New("undecodable message")

	// ErrSubscribe: the durable consumer could not be created, updated or
	// consumed (the cause is wrapped; a missing stream also matches
	// ErrNoStream).
	ErrSubscribe = errors.New("cannot subscribe")
)

// kindError is a sentinel with its own text that also matches a broader
// sentinel (its kind) with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.kind }

// ErrPermission is matched when the server refused an operation for lack of
// permission (publish, consume, JetStream API): the credentials in use are
// not allowed the subject; grant it in the account or user's permissions.
var ErrPermission = errors.New("permission denied")
