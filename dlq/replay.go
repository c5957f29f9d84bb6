package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// A replay publishes the original message again (payload and headers) on its
// original subject, waits for the stream's ack, then deletes the dead letter.
// The headers are those of the original message: the Dlq-* headers are
// dropped and the original Nats-* headers, which the middleware moved under
// Dlq-Original-, are restored where they still mean what they meant:
//
//   - Nats-Msg-Id (the event id) is NOT restored by default. The target
//     stream de-duplicates on it within its duplicates window (2m in
//     scripts/streams.yaml), counted from the original publish: a replay soon
//     after the dead-lettering would be acked as a duplicate and silently
//     not stored. A replay is a new publish, so it gets an id of its own,
//     "replay:<dlq stream>:<dlq seq>:<dlq stored time>": stable per dead
//     letter, so that re-running a replay that was stored but whose delete
//     failed stores it once. Consumers are not affected: the event id travels
//     in the payload and ce-id, and the idempotency middleware keys on it.
//     ReplayOptions.OriginalMsgID restores the original id instead; a replay
//     that the stream then de-duplicates fails with ErrDeduplicated and
//     keeps the dead letter.
//   - Nats-TTL is restored (the message keeps its time to live).
//   - The other Nats-* headers are one-time instructions of the original
//     publish that would misfire now (Nats-Expected-Last-Sequence and the
//     other Nats-Expected-* checks against a stream that has moved on,
//     Nats-Rollup, which would purge the subject) or marks the server added
//     to the stored message: they are dropped.
//
// When the dead letter names its original stream (Dlq-Original-Stream), the
// replay expects that stream (Nats-Expected-Stream): if the subject is now
// stored by another stream, the publish fails (ErrStreamMoved) rather than
// landing where the consumer that gave up on it does not read.
//
// A replay at a time (ReplayOptions.At) publishes the same message as a
// message schedule (ADR-51, transport.At) on the schedule subject of the
// event, so the original stream holds it until then and stores it on its
// subject at that time, payload and headers unchanged (the event keeps its
// id); the dead letter is deleted once the schedule is stored. The original
// stream must allow schedules (allow_msg_schedules; transport.ErrSchedulesDisabled
// otherwise); jetstream.Publisher.CancelSchedule(subject, event id) cancels
// one.

// ReplayOptions are the options of one replay.
type ReplayOptions struct {
	// OriginalMsgID publishes with the original Nats-Msg-Id: inside the
	// target stream's duplicates window the replay is then de-duplicated
	// and fails with ErrDeduplicated. Default false: a replay id of its own.
	OriginalMsgID bool
	// Keep keeps the dead letter after replaying it. Default false.
	Keep bool
	// At, when set, replays later, at that time (a message schedule of the
	// original stream). Default: now.
	At time.Time
}

// Replayed is what a replay did.
type Replayed struct {
	// Seq is the dead letter's sequence; Target its original subject;
	// Subject where the replay was published (the schedule's subject for a
	// replay at a time).
	Seq             uint64
	Target, Subject string
	// MsgID is the replay's Nats-Msg-Id.
	MsgID string
	// Ack is the target stream's ack.
	Ack *natsjs.PubAck
	// Duplicate: an earlier replay of this dead letter was already stored
	// (its replay id is stable); nothing new was stored.
	Duplicate bool
	// Deleted: the dead letter was deleted (not Keep).
	Deleted bool
	// At is the replay's time (zero: now).
	At time.Time
}

// ReplayMessage is the message a replay of raw publishes, and the publish
// options: its msg id and expected stream. A replay at a later time (at not
// zero) is the schedule of that message. stream is the dead-letter stream's
// name (part of the replay id). Errors match ErrNotDeadLetter.
func ReplayMessage(raw *natsjs.RawStreamMsg, stream string, originalMsgID bool, at time.Time) (*nats.Msg, string, []natsjs.PublishOpt, error) {
	subject := raw.Header.Get(middleware.HeaderSubject)
	if subject == "" {
		return nil, "", nil, fmt.Errorf("%w: %s seq %d (%s) has no %s header", ErrNotDeadLetter, stream, raw.Sequence, raw.Subject, middleware.HeaderSubject)
	}
	msg := &nats.Msg{Subject: subject, Header: OriginalHeader(raw.Header), Data: raw.Data}
	occurrenceOf(msg, raw.Header)
	id := fmt.Sprintf("replay:%s:%d:%d", stream, raw.Sequence, raw.Time.UnixNano())
	if originalMsgID {
		id = headerFold(raw.Header, middleware.HeaderOriginalPrefix+nats.MsgIdHdr)
	}
	if !at.IsZero() {
		o, err := transport.ResolvePublishOptions([]transport.PublishOption{transport.At(at)})
		if err != nil {
			return nil, "", nil, err
		}
		// The schedule waits on a subject of its own per event: the event
		// id (ce-id), or the replay id for a message that is no event.
		eventID := msg.Header.Get(marshaler.HeaderID)
		if eventID == "" {
			eventID = fmt.Sprintf("replay-%s-%d", stream, raw.Sequence)
		}
		o.Apply(msg, eventID, time.Now())
	}
	var opts []natsjs.PublishOpt
	if id != "" {
		opts = append(opts, natsjs.WithMsgID(id))
	}
	if s := raw.Header.Get(middleware.HeaderStream); s != "" {
		opts = append(opts, natsjs.WithExpectStream(s))
	}
	return msg, id, opts, nil
}

// occurrenceOf gives msg, the replay of a dead letter whose headers are h,
// the id of the occurrence it was when the dead letter is an occurrence of
// a recurring schedule: its Nats-Scheduler and Nats-Schedule-Next headers,
// from which the consumer derived that id (marshaler.OccurrenceID), cannot
// be published again (the server takes them from schedules only), so the
// replay carries the occurrence's id in its payload and ce-id instead.
// Without it, two replayed occurrences would share the schedule's event id,
// and an idempotent handler would run one of them only.
func occurrenceOf(msg *nats.Msg, h nats.Header) {
	orig := nats.Header{}
	for _, k := range []string{marshaler.HeaderScheduler, marshaler.HeaderScheduleNext} {
		if v := headerFold(h, middleware.HeaderOriginalPrefix+k); v != "" {
			orig.Set(k, v)
		}
	}
	next := orig.Get(marshaler.HeaderScheduleNext)
	if orig.Get(marshaler.HeaderScheduler) == "" || next == "" || next == transport.ScheduleNextPurge {
		return
	}
	e, err := envelope.Decode(msg.Data, len(msg.Data))
	if err != nil {
		return // not an envelope: nothing to re-identify
	}
	e.ID = marshaler.OccurrenceID(e.ID, next)
	msg.Data = e.AppendJSON(nil)
	if msg.Header.Get(marshaler.HeaderID) != "" {
		msg.Header.Set(marshaler.HeaderID, e.ID)
	}
}

// Replay publishes the original of the dead letter raw (read with Get,
// List or Scan), waits for the ack, then deletes the dead letter unless
// opts.Keep. A failure is a *ReplayError; the dead letter is then kept.
func (q *Queue) Replay(ctx context.Context, raw *natsjs.RawStreamMsg, opts ReplayOptions) (Replayed, error) {
	msg, id, popts, err := ReplayMessage(raw, q.name, opts.OriginalMsgID, opts.At)
	if err != nil {
		return Replayed{}, &ReplayError{Stream: q.name, Seq: raw.Sequence, Target: raw.Header.Get(middleware.HeaderSubject), Subject: raw.Subject, Err: ErrNotDeadLetter, Cause: err}
	}
	r := Replayed{Seq: raw.Sequence, Target: raw.Header.Get(middleware.HeaderSubject), Subject: msg.Subject, MsgID: id, At: opts.At}
	fail := func(sentinel, cause error) *ReplayError {
		return &ReplayError{Stream: q.name, Seq: raw.Sequence, Target: r.Target, Subject: r.Subject, Scheduled: !opts.At.IsZero(),
			TargetStream: raw.Header.Get(middleware.HeaderStream), MsgID: id, Err: sentinel, Cause: cause}
	}
	ack, err := q.js.PublishMsg(ctx, msg, popts...)
	if err != nil {
		return r, q.publishErr(ctx, fail, r.Target, !opts.At.IsZero(), err)
	}
	r.Ack = ack
	if ack.Duplicate {
		if opts.OriginalMsgID {
			e := fail(ErrDeduplicated, nil)
			e.TargetStream = ack.Stream
			if st, err := q.js.Stream(ctx, ack.Stream); err == nil {
				e.Window = st.CachedInfo().Config.Duplicates
			}
			return r, e
		}
		// Our own replay id: an earlier replay of this dead letter was
		// stored (and its delete failed, or Keep was given).
		r.Duplicate = true
	}
	if !opts.Keep {
		if err := q.st.DeleteMsg(ctx, raw.Sequence); err != nil && !missing(err) {
			e := fail(ErrDeleteFailed, err)
			e.TargetStream, e.Ack = ack.Stream, ack
			return r, e
		}
		r.Deleted = true
	}
	return r, nil
}

// publishErr classifies a failed replay publish.
func (q *Queue) publishErr(ctx context.Context, fail func(sentinel, cause error) *ReplayError, target string, scheduled bool, err error) error {
	var apiErr *natsjs.APIError
	noStream := errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
	if scheduled && (noStream || errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeMessageSchedulesDisabled) {
		name, lerr := q.js.StreamNameBySubject(ctx, target)
		if lerr != nil && noStream {
			return fail(ErrNoTargetStream, err)
		}
		e := fail(transport.ErrSchedulesDisabled, err)
		e.TargetStream = name // "" when the lookup failed
		return e
	}
	switch {
	case noStream:
		return fail(ErrNoTargetStream, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamNotFound,
		errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "expected stream"):
		return fail(ErrStreamMoved, err)
	}
	return fail(err, nil)
}
