package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// PendingSchedule is a message schedule waiting in a stream (published
// with At, After, Cron or Every, or by a dead-letter replay at a time).
type PendingSchedule struct {
	// Stream and Seq locate the schedule; Subject is its subject
	// (_schedule.<target>.<event id>); Stored when it was stored.
	Stream  string
	Seq     uint64
	Subject string
	Stored  time.Time
	// Target is the subject the event is stored on when it fires.
	Target string
	// Schedule is the Nats-Schedule header: "@at <RFC 3339>", a cron
	// expression, "@every <duration>"; TimeZone the cron's time zone.
	Schedule, TimeZone string
	// At is the time of an "@at" schedule (zero for recurring ones).
	At time.Time
	// EventID, Type and Organization are the event's, from its ce-*
	// headers (empty for a message that is no event).
	EventID, Type, Organization string
}

// SchedulePage is one page of ListSchedules.
type SchedulePage struct {
	Schedules []PendingSchedule
	// Next is where the next page starts; 0 when the page reached the
	// stream's last sequence.
	Next uint64
}

// ListSchedules reads up to limit (at least 1) pending schedules of a
// stream from sequence from (0: the first), oldest first, with the
// message-get API on the schedule subjects (_schedule.>): no consumer,
// nothing changed. A stream that does not allow schedules has none.
func ListSchedules(ctx context.Context, js natsjs.JetStream, stream string, from uint64, limit int) (SchedulePage, error) {
	var p SchedulePage
	if limit < 1 {
		return p, fmt.Errorf("%w: schedules page size %d, want 1 or more", envelope.ErrInvalidConfig, limit)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return p, fmt.Errorf("schedules of %s: %w", stream, err)
	}
	info := st.CachedInfo()
	if !info.Config.AllowMsgSchedules {
		return p, nil
	}
	last := info.State.LastSeq
	seq := max(from, info.State.FirstSeq, 1)
	for seq <= last && len(p.Schedules) < limit {
		raw, err := st.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(transport.SchedulePrefix+".>"))
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			return p, nil
		}
		if err != nil {
			return p, fmt.Errorf("schedules of %s from seq %d: %w", stream, seq, err)
		}
		if raw.Sequence > last {
			return p, nil
		}
		seq = raw.Sequence + 1
		if s, ok := pendingSchedule(stream, raw); ok {
			p.Schedules = append(p.Schedules, s)
		}
	}
	if seq <= last {
		p.Next = seq
	}
	return p, nil
}

func pendingSchedule(stream string, raw *natsjs.RawStreamMsg) (PendingSchedule, bool) {
	h := raw.Header
	s := PendingSchedule{
		Stream: stream, Seq: raw.Sequence, Subject: raw.Subject, Stored: raw.Time.UTC(),
		Target:   h.Get(transport.HeaderScheduleTarget),
		Schedule: h.Get(transport.HeaderSchedule),
		TimeZone: h.Get(transport.HeaderScheduleTimeZone),
		EventID:  h.Get(marshaler.HeaderID), Type: h.Get(marshaler.HeaderType), Organization: h.Get(marshaler.HeaderOrganization),
	}
	if at, ok := strings.CutPrefix(s.Schedule, "@at "); ok {
		s.At, _ = time.Parse(time.RFC3339Nano, at)
	}
	return s, s.Schedule != ""
}

// CancelScheduleAt removes the pending schedule stored in stream at seq
// (what ListSchedules returned), so that it does not fire (again). It
// returns an error matching transport.ErrScheduleNotFound when that message is gone
// (it fired, was cancelled) or is not a schedule. The wait ends at ctx's
// deadline. Publisher.CancelSchedule does the same by subject and event
// id; this form is for an operator who picked a row in a listing.
func CancelScheduleAt(ctx context.Context, js natsjs.JetStream, stream string, seq uint64) error {
	fail := func(err error) error { return fmt.Errorf("cancel schedule %s seq %d: %w", stream, seq, err) }
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fail(err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return fail(fmt.Errorf("%w: it fired or was cancelled", transport.ErrScheduleNotFound))
	}
	if err != nil {
		return fail(err)
	}
	if _, ok := pendingSchedule(stream, raw); !ok || !strings.HasPrefix(raw.Subject, transport.SchedulePrefix+".") {
		return fail(fmt.Errorf("%w: %s is not a schedule", transport.ErrScheduleNotFound, cmp.Or(raw.Subject, "the message")))
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, natsjs.ErrMsgNotFound) || strings.Contains(err.Error(), "no message found") {
			return fail(fmt.Errorf("%w: it fired while being cancelled", transport.ErrScheduleNotFound))
		}
		return fail(err)
	}
	return nil
}
