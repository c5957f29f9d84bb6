package memory

import (
	"container/heap"
	"slices"
	"time"
)

// Per-message TTL (ADR-43): a message stored with a Nats-TTL header is
// removed once its time to live has passed on the bus's clock (on the Tick
// after, with a manual clock). A removed message is gone for every durable:
// one that has not delivered it never will, and one that holds it unacked
// forgets it (its settlement then changes nothing), as on JetStream.

// expiry is a message to remove at a time.
type expiry struct {
	at time.Time
	s  *stream
	m  *storedMsg
}

type expiryHeap []expiry

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].m.seq < h[j].m.seq
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// expireAtLocked removes m from s at at.
func (b *Bus) expireAtLocked(s *stream, m *storedMsg, at time.Time) {
	heap.Push(&b.expiries, expiry{at: at, s: s, m: m})
	b.scheduleLocked(at)
}

// expireMessagesLocked removes every message whose time to live ended by
// now.
func (b *Bus) expireMessagesLocked(now time.Time) {
	for len(b.expiries) > 0 && !b.expiries[0].at.After(now) {
		e := heap.Pop(&b.expiries).(expiry)
		if !e.s.deleted {
			e.s.removeLocked(e.m)
		}
	}
}

// nextTimedLocked is the earliest schedule fire time or message expiry
// after now (zero: none).
func (b *Bus) nextTimedLocked(now time.Time) time.Time {
	var next time.Time
	for len(b.expiries) > 0 && (b.expiries[0].m.deleted || b.expiries[0].s.deleted) {
		heap.Pop(&b.expiries) // removed meanwhile
	}
	if len(b.expiries) > 0 {
		next = b.expiries[0].at
	}
	if t := b.nextScheduleLocked(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
		next = t
	}
	if !next.IsZero() && !next.After(now) {
		// Due already: the tick that follows handles it; wake right after.
		next = now.Add(time.Millisecond)
	}
	return next
}

// removeLocked removes m from s (TTL, a cancelled or fired schedule, a
// schedule replaced): it stays in s.msgs as a tombstone with no subject,
// which no filter matches, so that sequences keep indexing s.msgs. Every
// durable stops counting it pending and forgets an unacked delivery of it.
func (s *stream) removeLocked(m *storedMsg) {
	if m.deleted {
		return
	}
	for _, d := range s.consumers {
		if m.seq >= d.nextSeq && matchAny(d.spec.FilterSubjects, m.subject) {
			d.numPending--
		}
		if e := d.pending[m.seq]; e != nil {
			d.removeLocked(e)
		}
	}
	if e := s.schedules[m.subject]; e != nil && e.msg == m {
		s.b.removeScheduleLocked(e)
	}
	if live := slices.DeleteFunc(s.bySubject[m.subject], func(o *storedMsg) bool { return o == m }); len(live) > 0 {
		s.bySubject[m.subject] = live
	} else {
		delete(s.bySubject, m.subject)
	}
	m.deleted = true
	m.subject, m.header, m.data = "", nil, nil
	s.removed++
}

// purgeSubjectLocked removes every message on subject.
func (s *stream) purgeSubjectLocked(subject string) {
	for _, m := range slices.Clone(s.bySubject[subject]) {
		s.removeLocked(m)
	}
}
