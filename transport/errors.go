package transport

// This file is the module's vocabulary of errors about brokers: the kinds
// that callers match with errors.Is, each defined once, here, and matched
// the same on every transport (jetstream, memory). The root package events
// re-exports them. Validation kinds (envelope.ErrInvalidConfig, ErrInvalidEvent,
// ErrInvalidSubject, ErrTooLarge) are envelope's, decode kinds
// (ErrUnmarshal) marshaler's; a transport's own kinds (jetstream's
// ErrNoJetStream, ErrPermission, ErrTimeout) are in its errors.go.

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of transports.
var (
	// ErrConsumerEnded is matched by Consumer.Err when the consumer could not
	// be recovered (its stream is gone, permission denied, ...).
	ErrConsumerEnded = errors.New("consumer ended")
	// ErrCloseTimeout is matched by the cause (context.Cause) of a
	// handler's context cut at the close deadline of a stop: its message
	// was nacked for redelivery, so nothing it does now may count (the
	// dead-letter step stores no dead letter for it); and by the stop's
	// error that reports it.
	ErrCloseTimeout = errors.New("close deadline passed with handlers running")
	// ErrDeadLetter is matched by every failed PublishDeadLetter.
	ErrDeadLetter = errors.New("dead-letter publish failed")
	// ErrNoConsumer: the durable consumer named does not exist (on a stream
	// that does): a Pauser's Pause or Resume of a durable nobody created
	// yet, a state read of one deleted.
	ErrNoConsumer = errors.New("no such durable consumer")
)

// Publish failures shared by every transport (jetstream, memory): each
// transport's own sentinel of the same name matches these, so that service
// code matching events.ErrNoStream, ErrPublish or ErrClosed behaves the same
// on the memory bus in tests as on JetStream.
var (
	// ErrNoStream: no stream stores the subject published to.
	ErrNoStream = errors.New("no stream listens on subject")
	// ErrPublish: a publish that passed validation but was not confirmed
	// as stored.
	ErrPublish = errors.New("publish failed")
	// ErrClosed: the publisher, subscriber or bus was closed.
	ErrClosed = errors.New("closed")
	// ErrNotSent: a batch event that was valid but not sent, because
	// another event of the same batch failed validation (a batch is
	// validated as a whole before anything is sent).
	ErrNotSent = errors.New("event not sent")
	// ErrSubscribe is matched by every consume or subscribe setup error
	// (durable not created or bound; ErrNoStream too when the stream is
	// missing).
	ErrSubscribe = errors.New("cannot subscribe")
	// ErrNoJetStream: the server has no JetStream (started without -js),
	// or the account has none, or no JetStream answers in the domain asked
	// for. Every entry point that needs JetStream reports it (publishes,
	// stream setup, Consume and so the router's Run), never as
	// ErrNoStream; the message ends with what to do: start nats-server with
	// JetStream (-js).
	ErrNoJetStream = errors.New("no JetStream on the server")
	// ErrPermission: the server refused an operation for lack of
	// permission (publish, consume, JetStream API): the credentials in use
	// are not allowed the subject; grant it in the account or user's
	// permissions. The message names the subject.
	ErrPermission = errors.New("permission denied")
	// ErrTimeout: the broker did not answer in time: a publish's ack
	// before the context's deadline or the publisher's timeout, or a wait
	// for a free pending slot.
	ErrTimeout = errors.New("timed out")
	// ErrTooManyPending: PublishAsync (or a batch) could not queue an event
	// because MaxPending acks were outstanding until the context ended (with
	// ErrTimeout when its deadline passed).
	ErrTooManyPending = errors.New("too many pending acks")
	// ErrSubjectsOverlap: a stream's subjects overlap another stream's (a
	// message is stored by one stream only); the message names the other
	// stream.
	ErrSubjectsOverlap = errors.New("subjects overlap with another stream")
)

// Errors of scheduled, expiring and atomic publishes, shared by every
// transport (jetstream, memory) so that service code matching them behaves
// the same on the memory bus in tests as on JetStream. The consume and
// shared publish sentinels are in transport.go.
var (
	// ErrInvalidOption: a publish option is invalid (a TTL under one
	// second, a cron expression the server would refuse, two schedules on
	// one publish, an option an atomic batch cannot take). Nothing was sent.
	ErrInvalidOption = errors.New("invalid publish option")

	// ErrSchedulesDisabled: the stream that stores the subject does not
	// allow message schedules. The message names the stream and the fix:
	// AllowMsgSchedules in its StreamSpec (allow_msg_schedules in
	// streams.yaml).
	ErrSchedulesDisabled = errors.New("stream does not allow message schedules")

	// ErrTTLDisabled: the stream does not allow per-message TTLs. The
	// message names the stream and the fix: AllowMsgTTL in its StreamSpec
	// (allow_msg_ttl in streams.yaml).
	ErrTTLDisabled = errors.New("stream does not allow per-message TTL")

	// ErrAtomicDisabled: the stream does not allow atomic batches. The
	// message names the stream and the fix: AllowAtomicPublish in its
	// StreamSpec (allow_atomic in streams.yaml).
	ErrAtomicDisabled = errors.New("stream does not allow atomic batch publish")

	// ErrConflict is matched by a *ConflictError: the last sequence on the
	// expected subject was not the one given to ExpectLastSequence, so
	// nothing was stored.
	ErrConflict = errors.New("expected last sequence does not match")

	// ErrBatchAbandoned: the server abandoned an atomic batch before its
	// commit (a message of it was lost, the stream's leader changed, or the
	// batch was idle for 10 seconds). Nothing of it was stored; publishing
	// the batch again is safe.
	ErrBatchAbandoned = errors.New("atomic batch abandoned: nothing stored")

	// ErrBatchTooLarge: an atomic batch holds more events than the server
	// takes in one batch (MaxAtomicBatch, 1,000 by default). Nothing was
	// sent.
	ErrBatchTooLarge = errors.New("atomic batch too large")

	// ErrBatchDuplicate: an event of the atomic batch is already stored in
	// the stream's duplicates window (same event id), so the server refused
	// the whole batch: nothing of it was stored now. When the batch is a
	// retry of one whose outcome was unknown, the earlier attempt committed.
	ErrBatchDuplicate = errors.New("atomic batch holds an event already stored")

	// ErrScheduleNotFound: CancelSchedule found no pending schedule for the
	// subject and event id: it fired already (a one-shot schedule is removed
	// when it fires), was cancelled, or never existed.
	ErrScheduleNotFound = errors.New("no pending schedule")

	// ErrUnsupported: the transport cannot do what was asked (documented
	// where it applies).
	ErrUnsupported = errors.New("not supported by this transport")
)

// Error is a transport operation that failed: what was being done (Op:
// "publish", "consume", "dead-letter"), where (Stream, Subject, EventID;
// empty when unknown), what kind of failure it was (Kinds: the sentinels of
// this file, envelope's or marshaler's, matched with errors.Is), what to do
// about it when something can be done (Hint), and the cause (Err, matched
// with errors.Is and errors.As too). It is the one error type transports
// wrap a broker's error in, once.
type Error struct {
	Op      string
	Stream  string
	Subject string
	EventID string
	Kinds   []error
	Hint    string
	Err     error
}

// Error reads "publish auth.user.created event <id> (stream S): <kinds>:
// <hint>: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Subject != "" {
		b.WriteString(" " + e.Subject)
	}
	if e.EventID != "" {
		b.WriteString(" event " + e.EventID)
	}
	if e.Stream != "" {
		b.WriteString(" (stream " + e.Stream + ")")
	}
	for _, k := range e.Kinds {
		b.WriteString(": " + k.Error())
	}
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Is matches every kind of e.
func (e *Error) Is(target error) bool {
	for _, k := range e.Kinds {
		if k == target {
			return true
		}
	}
	return false
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ConflictError is an expected-sequence publish (ExpectLastSequence) that
// found another last sequence: someone else wrote to Subject since the
// caller read it. Nothing of the publish or atomic batch was stored. Reload
// the state up to Current and decide again.
type ConflictError struct {
	// Subject is the subject (or wildcard filter) whose last sequence was
	// checked.
	Subject string
	// Expected is the sequence the publish expected.
	Expected uint64
	// Current is the last sequence stored on Subject when the check ran (0:
	// nothing stored). CurrentKnown is false when the server refused the
	// publish without telling it (a concurrent write to the same subject was
	// still in flight) and reading it afterwards failed too.
	Current      uint64
	CurrentKnown bool
}

func (e *ConflictError) Error() string {
	cur := "unknown"
	if e.CurrentKnown {
		cur = fmt.Sprint(e.Current)
	}
	return fmt.Sprintf("%v: %s expected last sequence %d, current %s", ErrConflict, e.Subject, e.Expected, cur)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
