package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// Message schedules, as nats-server runs them (ADR-51): a message with a
// Nats-Schedule header waits on its own subject; when its time comes the
// bus stores a copy of it on its Nats-Schedule-Target subject (the
// schedule headers, Nats-Expected-*, Nats-Msg-Id and Nats-TTL removed;
// Nats-Scheduler, Nats-Schedule-Next and the schedule's TTL added), then
// removes a one-shot schedule or computes a recurring one's next time. Time
// is the bus's clock: with a manual clock a schedule fires on the Tick
// after the clock reached its time, so a test of "reminder after 24 h"
// advances the clock 24 h and ticks. A recurring schedule whose times were
// missed (the clock jumped) fires once, at the tick, then at its next time
// after the clock, as the server does after being down.

// schedEntry is a pending schedule.
type schedEntry struct {
	s     *stream
	msg   *storedMsg
	sched transport.Schedule
	next  time.Time
	idx   int // in Bus.schedules
}

type schedHeap []*schedEntry

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].msg.seq < h[j].msg.seq
}
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *schedHeap) Push(x any) {
	e := x.(*schedEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// addScheduleLocked registers m, just stored on its subject in s, as that
// subject's schedule (a former one was removed by the roll-up).
func (b *Bus) addScheduleLocked(s *stream, m *storedMsg, sched transport.Schedule, now time.Time) {
	next, err := sched.Next(now, now)
	if err != nil {
		return // checked when published: cannot happen
	}
	e := &schedEntry{s: s, msg: m, sched: sched, next: next}
	s.schedules[m.subject] = e
	heap.Push(&b.schedules, e)
	b.scheduleLocked(next)
}

// removeScheduleLocked forgets a schedule (its message was removed, or its
// stream deleted).
func (b *Bus) removeScheduleLocked(e *schedEntry) {
	if e.idx >= 0 {
		heap.Remove(&b.schedules, e.idx)
	}
	if e.s.schedules[e.msg.subject] == e {
		delete(e.s.schedules, e.msg.subject)
	}
}

// fireSchedulesLocked fires every schedule due at now, earliest first.
func (b *Bus) fireSchedulesLocked(now time.Time) {
	for len(b.schedules) > 0 && !b.schedules[0].next.After(now) {
		e := b.schedules[0]
		due := e.next
		h := firedHeader(e.msg.header, e.msg.subject)
		if e.sched.Repeats() {
			next, err := e.sched.Next(due, now)
			if err != nil {
				b.removeScheduleLocked(e)
				continue
			}
			e.next = next
			heap.Fix(&b.schedules, e.idx)
			h.Set(transport.HeaderScheduleNext, next.Format(time.RFC3339Nano))
		} else {
			b.removeScheduleLocked(e)
			h.Set(transport.HeaderScheduleNext, transport.ScheduleNextPurge)
		}
		var hc headerChecks
		if v := h.Get(transport.HeaderTTL); v != "" {
			if ttl, err := transport.ParseTTL(v); err == nil {
				hc.ttl = max(ttl, 0)
			}
		}
		if !e.sched.Repeats() {
			hc.purgeScheduler = e.msg.subject
		}
		target := e.msg.header.Get(transport.HeaderScheduleTarget)
		e.s.storeLocked(target, h, e.msg.data, "", hc, now)
		e.s.dispatchLocked(now)
	}
}

// firedHeader is the header of the event a schedule on subject stores:
// the schedule's own, without what would stop it from being stored or
// belongs to the schedule, with Nats-Scheduler (Nats-Schedule-Next is
// added by the caller) and the schedule's TTL.
func firedHeader(h nats.Header, subject string) nats.Header {
	out := make(nats.Header, len(h))
	for k, vs := range h {
		switch {
		case strings.HasPrefix(k, "Nats-Schedule"), strings.HasPrefix(k, "Nats-Expected-"),
			k == nats.MsgIdHdr, k == transport.HeaderTTL, k == transport.HeaderRollup:
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	out.Set(transport.HeaderScheduler, subject)
	if ttl := h.Get(transport.HeaderScheduleTTL); ttl != "" {
		out.Set(transport.HeaderTTL, ttl)
	}
	return out
}

// nextScheduleLocked is the earliest pending schedule's time (zero: none).
func (b *Bus) nextScheduleLocked() time.Time {
	if len(b.schedules) == 0 {
		return time.Time{}
	}
	return b.schedules[0].next
}

// cancelSchedule removes the pending schedule on subject (a schedule
// subject).
func (b *Bus) cancelSchedule(subject string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return transport.ErrClosed
	}
	s := b.streamForLocked(subject)
	if s == nil {
		return fmt.Errorf("%w: no stream stores %s (the stream of the subject does not allow schedules)", transport.ErrScheduleNotFound, subject)
	}
	e := s.schedules[subject]
	if e == nil {
		return fmt.Errorf("%w in stream %s: it fired, was cancelled, or was never made", transport.ErrScheduleNotFound, s.cfg.Name)
	}
	s.removeLocked(e.msg)
	return nil
}

// CancelSchedule removes the pending schedule of the event eventID
// published on subject with At, After, Cron or Every, as
// jetstream.Publisher.CancelSchedule does. Errors match
// transport.ErrScheduleNotFound (it fired, was cancelled or never made),
// envelope.ErrInvalidSubject or transport.ErrClosed.
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
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cancel schedule of %s event %s: %w", subject, eventID, err)
	}
	sched := transport.ScheduleSubject(subject, eventID)
	err := p.b.cancelSchedule(sched)
	for _, s := range p.cfg.Partitions {
		if !errors.Is(err, transport.ErrScheduleNotFound) {
			break
		}
		if !s.Covers(subject) {
			continue
		}
		// Placed in the partition of the event's key, which only the
		// event tells: the schedule in any partition.
		for part := range s.Count {
			if err = p.b.cancelSchedule(transport.ScheduleSubject(partition.Subject(subject, part), eventID)); !errors.Is(err, transport.ErrScheduleNotFound) {
				break
			}
		}
		break
	}
	if err != nil {
		return fmt.Errorf("cancel schedule of %s event %s (%s): %w", subject, eventID, sched, err)
	}
	return nil
}
