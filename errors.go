package events

import (
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Errors to match with errors.Is. They are the subpackages' sentinels, so
// matching either name works.
var (
	// ErrNoStream: no stream listens on the subject published to. Create the
	// streams first (./scripts/setup-nats-streams.sh, or jetstream.Ensure
	// from the service).
	ErrNoStream = transport.ErrNoStream
	// ErrNoJetStream: the server (or the account) has no JetStream: start
	// nats-server with JetStream (-js). Publishes, stream setup and the
	// router's Run report it, never as ErrNoStream.
	ErrNoJetStream = transport.ErrNoJetStream
	// ErrTimeout: the stream's ack did not arrive in time (context deadline
	// or publish timeout).
	ErrTimeout = transport.ErrTimeout
	// ErrInvalidSubject: the subject is not dot-separated [A-Za-z0-9_-]
	// tokens (wildcards are refused).
	ErrInvalidSubject = envelope.ErrInvalidSubject
	// ErrInvalidEvent: the event breaks an envelope rule (see Event.Validate).
	ErrInvalidEvent = envelope.ErrInvalidEvent
	// ErrTooLarge: the encoded event is over the maximum size (1 MiB default).
	ErrTooLarge = envelope.ErrTooLarge
	// ErrClosed: the publisher was closed.
	ErrClosed = transport.ErrClosed
	// ErrPublish: an event was sent but not confirmed by the stream.
	ErrPublish = transport.ErrPublish
	// ErrPermission: the NATS user may not use a subject (publish, acks, consume).
	ErrPermission = transport.ErrPermission
	// ErrUnmarshal: a message could not be decoded into an event.
	ErrUnmarshal = marshaler.ErrUnmarshal
	// ErrPermanent is matched by every error made with Permanent.
	ErrPermanent = middleware.ErrPermanent
	// ErrDataDecode: an event's data does not decode into the given type.
	ErrDataDecode = envelope.ErrDataDecode
	// ErrInvalidConfig: a configuration refused before anything runs (a
	// router, group, publisher or stream spec; a group whose filter the
	// stream does not store). Every package's ErrInvalidConfig is this value.
	ErrInvalidConfig = envelope.ErrInvalidConfig
)

// Errors of scheduled, expiring and atomic publishes (README: "Scheduled
// and delayed events", "Per-event TTL", "Atomic batches"). The memory bus
// returns the same ones.
var (
	// ErrInvalidOption: a publish option is invalid (a TTL under 1s, a cron
	// expression the server would refuse, two schedules); nothing was sent.
	ErrInvalidOption = transport.ErrInvalidOption
	// ErrSchedulesDisabled: the stream does not allow message schedules;
	// the error names the stream and the setting to turn on.
	ErrSchedulesDisabled = transport.ErrSchedulesDisabled
	// ErrTTLDisabled: the stream does not allow per-message TTL.
	ErrTTLDisabled = transport.ErrTTLDisabled
	// ErrAtomicDisabled: the stream does not allow atomic batches.
	ErrAtomicDisabled = transport.ErrAtomicDisabled
	// ErrConflict is matched by a *ConflictError: someone wrote to the
	// subject since the expected sequence was read; nothing was stored.
	ErrConflict = transport.ErrConflict
	// ErrBatchAbandoned: the server abandoned an atomic batch (connection
	// lost, leader change, 10 s idle); nothing of it was stored.
	ErrBatchAbandoned = transport.ErrBatchAbandoned
	// ErrBatchTooLarge: more events than one atomic batch takes (1,000).
	ErrBatchTooLarge = transport.ErrBatchTooLarge
	// ErrBatchDuplicate: an atomic batch holds an event already stored
	// (a retried batch whose first attempt committed).
	ErrBatchDuplicate = transport.ErrBatchDuplicate
	// ErrScheduleNotFound: CancelSchedule found no pending schedule (it
	// fired, was cancelled, or never existed).
	ErrScheduleNotFound = transport.ErrScheduleNotFound
	// ErrUnsupported: the transport cannot do it (see memory's doc).
	ErrUnsupported = transport.ErrUnsupported
)

// Permanent marks err as not worth retrying: a handler returning it has its
// event dead-lettered at once instead of redelivered.
func Permanent(err error) error { return middleware.Permanent(err) }

// IsPermanent reports whether err was made with Permanent.
func IsPermanent(err error) bool { return middleware.IsPermanent(err) }
