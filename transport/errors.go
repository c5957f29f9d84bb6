package transport

import (
	"errors"
	"fmt"
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
