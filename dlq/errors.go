package dlq

import (
	"errors"
	"fmt"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrInvalidFilter: a subject filter that is not a NATS subject filter
	// (empty token, '>' not last, '*' inside a token, whitespace).
	ErrInvalidFilter = errors.New("dlq: invalid subject filter")

	// ErrFilterOutsideStream: the dead-letter stream cannot hold messages on
	// the filter (typically the original subject without the dlq. prefix).
	// The error is a *FilterError, which names the subject that works.
	ErrFilterOutsideStream = errors.New("dlq: filter outside the dead-letter stream")

	// ErrNotFound: no dead letter at that sequence (replayed, purged, never
	// stored). Matched together with natsjs.ErrMsgNotFound.
	ErrNotFound = errors.New("dlq: no such dead letter")

	// ErrNotDeadLetter: a message of the dead-letter stream lacks the
	// headers a replay needs (middleware.HeaderSubject).
	ErrNotDeadLetter = errors.New("not a dead letter")

	// ErrDeduplicated: a replay with ReplayOptions.OriginalMsgID was dropped
	// by the target stream as a duplicate (the original Nats-Msg-Id is still
	// inside the stream's duplicates window). Nothing was stored; the dead
	// letter is kept.
	ErrDeduplicated = errors.New("replay de-duplicated by the stream")

	// ErrNoTargetStream: no stream stores the original subject any more;
	// the dead letter is kept.
	ErrNoTargetStream = errors.New("no stream stores the original subject")

	// ErrStreamMoved: the original subject is now stored by another stream
	// than the one the consumer that gave up on it reads; the dead letter
	// is kept.
	ErrStreamMoved = errors.New("the original subject moved to another stream")

	// ErrDeleteFailed: the replay was stored but deleting the dead letter
	// failed. Replaying it again stores it once (the replay id is stable).
	ErrDeleteFailed = errors.New("replayed, but the dead letter could not be deleted")

	// ErrPurge: the server did not confirm a purge.
	ErrPurge = errors.New("dlq: purge not confirmed")
)

// SyntaxError is a subject filter that is not one.
type SyntaxError struct {
	Filter string
	// Why is what is wrong with it ("empty token").
	Why string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid subject filter %q: %s", e.Filter, e.Why)
}

func (e *SyntaxError) Is(target error) bool { return target == ErrInvalidFilter }

// FilterError is a subject filter the dead-letter stream cannot hold.
type FilterError struct {
	// Stream and its Subjects; Filter as given.
	Stream   string
	Subjects []string
	Filter   string
	// Suggest is the filter under the stream's prefix that holds dead
	// letters of Filter (dlq.auth.user.created for auth.user.created), or
	// "" when there is none.
	Suggest string
}

func (e *FilterError) Error() string {
	s := fmt.Sprintf("%s holds no dead letters on %s (it stores %s)", e.Stream, e.Filter, strings.Join(e.Subjects, ", "))
	if e.Suggest != "" {
		s += ": dead letters are stored on the original subject with its prefix: " + e.Suggest
	}
	return s
}

func (e *FilterError) Is(target error) bool { return target == ErrFilterOutsideStream }

// ReplayError is a failed replay of one dead letter. Err matches one of
// ErrNotDeadLetter, ErrDeduplicated, ErrNoTargetStream, ErrStreamMoved,
// transport.ErrSchedulesDisabled, ErrDeleteFailed, or is the server's error; the
// dead letter is kept unless Err is ErrDeleteFailed (then it is both
// replayed and kept).
type ReplayError struct {
	// Stream and Seq are the dead letter's.
	Stream string
	Seq    uint64
	// Target is the original subject; Subject where the replay was
	// published (the schedule's subject for a replay at a time).
	Target, Subject string
	// Scheduled is true for a replay at a time.
	Scheduled bool
	// TargetStream is the stream that stores (or refused) the replay, when
	// known: the ack's stream, the stream without schedules, the original.
	TargetStream string
	// MsgID is the replay's Nats-Msg-Id; Window the target stream's
	// duplicates window (ErrDeduplicated only, 0 when unknown).
	MsgID  string
	Window time.Duration
	// Ack is the replay's ack when it was stored (ErrDeleteFailed).
	Ack *natsjs.PubAck
	// Err is the sentinel; Cause the underlying error, when any.
	Err, Cause error
}

func (e *ReplayError) Error() string {
	what := fmt.Sprintf("replay of %s seq %d to %s", e.Stream, e.Seq, e.Target)
	if e.Scheduled {
		what = "scheduled " + what
	}
	if e.Cause != nil && e.Cause != e.Err {
		return fmt.Sprintf("%s: %v: %v", what, e.Err, e.Cause)
	}
	return fmt.Sprintf("%s: %v", what, e.Err)
}

func (e *ReplayError) Unwrap() []error {
	if e.Cause != nil && e.Cause != e.Err {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}
