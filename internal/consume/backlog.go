package consume

import (
	"time"

	"github.com/jetevents/events/transport"
)

// backlog holds a group's messages that are not in a handler, and decides
// which one a free worker takes next. fifo takes them in arrival order
// (stream order); lanes (keyed.go) keeps one lane per order key and never
// gives a worker a message while an earlier one of its key is in a handler
// or waiting for its retry. Every method is called with the group's lock
// held.
type backlog interface {
	// add takes a delivered message in. held is false when it does not
	// keep it: a redelivery of a message it holds (the credit it took is
	// given back), or, when release > 0, a message to hand back for that
	// long (a keyed group's message behind its key's released ones).
	add(d *transport.Delivery, now time.Time) (held bool, release time.Duration)
	// take returns the next message a worker may handle at now, with the
	// number of times a handler already ran it in this process (local
	// retries), or ok false when none may run now.
	take(now time.Time) (d *transport.Delivery, runs int, ok bool)
	// done tells that the handler of d (taken by take) returned v at now. It
	// returns whether the backlog keeps d for a local retry (it is neither
	// settled nor credited back then), and the messages it gives up to keep
	// a key's share of the group fair (to be released after delay).
	done(d *transport.Delivery, v transport.Verdict, now time.Time) (kept bool, release []*transport.Delivery, delay time.Duration)
	// drop forgets d, taken by take, without a verdict (its lease ran out).
	drop(d *transport.Delivery)
	// len is the number of messages held (not in a handler).
	len() int
	// each calls fn for every message held.
	each(fn func(d *transport.Delivery))
	// empty removes and returns every message held, each with the number of
	// handler runs it had.
	empty() (ds []*transport.Delivery, runs []int)
	// nextDue is when the earliest message waiting for a local retry becomes
	// runnable (zero: none waits).
	nextDue() time.Time
}

// fifo is the backlog of an unordered group: a ring in arrival order.
type fifo struct {
	ring    []*transport.Delivery
	head, n int
}

func newFIFO(capacity int) *fifo { return &fifo{ring: make([]*transport.Delivery, capacity)} }

func (q *fifo) add(d *transport.Delivery, _ time.Time) (bool, time.Duration) {
	if q.n == len(q.ring) {
		// More than the credit arrived (a pull thought lost came back after
		// all): grow rather than refuse; it is leased like the rest.
		r := make([]*transport.Delivery, 2*len(q.ring))
		for i := range q.n {
			r[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = r, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = d
	q.n++
	return true, 0
}

func (q *fifo) take(time.Time) (*transport.Delivery, int, bool) {
	if q.n == 0 {
		return nil, 0, false
	}
	d := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return d, 0, true
}

func (q *fifo) done(*transport.Delivery, transport.Verdict, time.Time) (bool, []*transport.Delivery, time.Duration) {
	return false, nil, 0
}

func (q *fifo) drop(*transport.Delivery) {}

func (q *fifo) len() int { return q.n }

func (q *fifo) each(fn func(*transport.Delivery)) {
	for i := range q.n {
		fn(q.ring[(q.head+i)%len(q.ring)])
	}
}

func (q *fifo) empty() ([]*transport.Delivery, []int) {
	ds := make([]*transport.Delivery, 0, q.n)
	for i := range q.n {
		idx := (q.head + i) % len(q.ring)
		ds = append(ds, q.ring[idx])
		q.ring[idx] = nil
	}
	q.n = 0
	return ds, make([]int, len(ds))
}

func (q *fifo) nextDue() time.Time { return time.Time{} }
