package jetstream

import (
	"context"
	"errors"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// CancelSchedule removes the pending schedule of the event eventID published
// on subject with At, After, Cron or Every, so that it does not fire (again).
// It returns nil once the schedule is removed, or an error matching
// transport.ErrScheduleNotFound when there is none: a one-shot schedule that fired
// already (it is removed as it fires), one cancelled before, or one never
// made. The wait ends at ctx's deadline, or after PublishTimeout when ctx
// has none (transport.ErrTimeout).
//
// A schedule is removed by deleting its message at the sequence read just
// before, so a cancel that loses the race with the firing reports
// transport.ErrScheduleNotFound rather than a success. One race is the server's: the
// instant between the server taking the schedule to fire it and storing the
// event (well under a millisecond on one server, a replication round trip
// in a cluster), a cancel still finds the schedule and removes it, and the
// event is stored all the same. Cancel ahead of the due time; a handler
// whose action must not happen after a cancel checks the state it acts on
// (is the invoice still unpaid?) as it would for any at-least-once event.
func (p *Publisher) CancelSchedule(ctx context.Context, subject, eventID string) error {
	if err := envelope.ValidateSubject(subject); err != nil {
		return fmt.Errorf("cancel schedule of %s event %s: %w", subject, eventID, err)
	}
	if eventID == "" {
		return fmt.Errorf("cancel schedule of %s: %w: empty event id", subject, envelope.ErrInvalidEvent)
	}
	if p.isClosed() {
		return fmt.Errorf("cancel schedule of %s event %s: %w", subject, eventID, transport.ErrClosed)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.PublishTimeout)
		defer cancel()
	}
	sched := transport.ScheduleSubject(subject, eventID)
	if partition.Specs(p.cfg.Partitions).Covers(subject) {
		// Placed in the partition of the event's key, which only the event
		// tells: the schedule in any partition (one subject per event id).
		sched = transport.ScheduleSubject(partition.AnySubject(subject), eventID)
	}
	fail := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", transport.ErrTimeout, err)
		}
		return fmt.Errorf("cancel schedule of %s event %s (%s): %w", subject, eventID, sched, err)
	}
	name, err := p.js.StreamNameBySubject(ctx, sched)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return fail(fmt.Errorf("%w: no stream stores %s (the stream of %s does not allow schedules)", transport.ErrScheduleNotFound, sched, subject))
	}
	if err != nil {
		return fail(err)
	}
	st, err := p.js.Stream(ctx, name)
	if err != nil {
		return fail(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, sched)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return fail(fmt.Errorf("%w in stream %s: it fired, was cancelled, or was never made", transport.ErrScheduleNotFound, name))
	}
	if err != nil {
		return fail(err)
	}
	if m.Header.Get(transport.HeaderSchedule) == "" {
		return fail(fmt.Errorf("%w: stream %s seq %d on %s is not a schedule", transport.ErrScheduleNotFound, name, m.Sequence, sched))
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil {
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			return fail(fmt.Errorf("%w in stream %s: it fired while being cancelled", transport.ErrScheduleNotFound, name))
		}
		return fail(err)
	}
	return nil
}
