package consume

import (
	"slices"
	"time"

	"github.com/jetevents/events/transport"
)

// lanes is the backlog of a keyed group: one lane per order key, each in
// stream order. A worker takes the head of a lane only when no other
// message of its key is in a handler, waiting for its retry, or handed back
// and not yet delivered again; different keys run in parallel, taking turns
// (lanes that can run form a FIFO: a hot key gets one message per turn, as
// every other).
//
// A failed head keeps its key: it stays held and leased, and is handled
// again in this process after the retry's delay (never nacked past its
// successors, which would let them run first; never handed back while they
// stay held, which could let them use up the credit it needs to come back).
// While a head waits, its lane keeps at most perKey messages: the rest are
// released (not counted as attempts) for the retry's delay, so that one
// blocked key cannot hold the group's whole FetchBatch while other keys'
// events wait behind it in the stream; they come back after the delay, and
// until they did no later message of the key runs.
type lanes struct {
	key    func(*transport.Delivery) string
	perKey int

	byKey   map[string]*lane
	ready   []*lane // lanes that may run, in turn order
	waiting map[*lane]struct{}
	n       int
}

type lane struct {
	key   string
	items []item // stream order; items[0] is the head
	busy  bool   // the head is in a handler
	due   time.Time
	ready bool // in lanes.ready
	// released are this key's messages handed back and not yet delivered
	// again: no message of the key after the first of them may run, nor be
	// held (it would take the credit they need to come back); gapUntil is
	// when the last of them is due back.
	released map[uint64]struct{}
	gapUntil time.Time
}

type item struct {
	d    *transport.Delivery
	runs int // handler runs in this process (local retries)
}

func newLanes(key func(*transport.Delivery) string, perKey int) *lanes {
	return &lanes{key: key, perKey: perKey, byKey: make(map[string]*lane), waiting: make(map[*lane]struct{})}
}

func (ls *lanes) add(d *transport.Delivery, now time.Time) (held bool, release time.Duration) {
	d.Key = ls.key(d)
	l := ls.byKey[d.Key]
	if l == nil {
		l = &lane{key: d.Key}
		ls.byKey[d.Key] = l
	}
	if l.behindGap(d.StreamSeq) {
		// A later message of a key whose earlier ones are out (first
		// delivered, or back before them: the broker need not redeliver in
		// stream order): it goes back (again), so that it takes no credit
		// they need to come back, and is out itself: what comes after it
		// waits for it.
		return false, ls.outside(l, d, l.gapUntil.Sub(now), now)
	}
	delete(l.released, d.StreamSeq)
	if !l.due.IsZero() && len(l.items) >= ls.perKey && d.StreamSeq > l.items[len(l.items)-1].d.StreamSeq {
		// The key waits for its head's retry and holds its share: a later
		// message waits outside, as done releases the excess (it arrived
		// after the head failed).
		return false, ls.outside(l, d, l.due.Sub(now), now)
	}
	i, found := slices.BinarySearchFunc(l.items, d.StreamSeq, func(it item, seq uint64) int {
		return cmpSeq(it.d.StreamSeq, seq)
	})
	if i == 0 && !found && l.busy {
		// Earlier in the stream than the message in its handler (handed
		// back out of order by a process that stopped): it cannot go
		// before it any more; it runs right after.
		i = 1
	}
	switch {
	case found && i == 0 && l.busy:
		// Delivered again while its handler runs (its lease ran out): the
		// handler's settlement (by stream sequence) covers this delivery
		// too; running it again would be a duplicate.
		return false, 0
	case found:
		// Delivered again while held (its lease ran out meanwhile): the
		// newer delivery holds the lease; the older one is gone.
		l.items[i].d = d
		return false, 0
	}
	l.items = slices.Insert(l.items, i, item{d: d})
	ls.n++
	ls.schedule(l, now)
	return true, 0
}

// outside marks d, one of l's messages, as handed back for wait (at least
// minGapWait) and returns the wait: until it is delivered again, no later
// message of the key runs or is held.
func (ls *lanes) outside(l *lane, d *transport.Delivery, wait time.Duration, now time.Time) time.Duration {
	wait = max(wait, minGapWait)
	if l.released == nil {
		l.released = make(map[uint64]struct{})
	}
	l.released[d.StreamSeq] = struct{}{}
	if due := now.Add(wait); due.After(l.gapUntil) {
		l.gapUntil = due
	}
	return wait
}

// minGapWait is the shortest delay a message behind a key's gap is handed
// back for.
const minGapWait = 50 * time.Millisecond

// behindGap reports whether seq comes after one of the key's messages that
// are out (released, not yet delivered again).
func (l *lane) behindGap(seq uint64) bool {
	for r := range l.released {
		if r < seq {
			return true
		}
	}
	return false
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// runnable reports whether l's head may be taken at now.
func (l *lane) runnable(now time.Time) bool {
	if l.busy || len(l.items) == 0 || (!l.due.IsZero() && now.Before(l.due)) {
		return false
	}
	head := l.items[0].d.StreamSeq
	for seq := range l.released {
		if seq < head {
			return false
		}
	}
	return true
}

// schedule puts l in the turn order when it may run.
func (ls *lanes) schedule(l *lane, now time.Time) {
	if !l.ready && l.runnable(now) {
		l.ready = true
		ls.ready = append(ls.ready, l)
	}
}

func (ls *lanes) take(now time.Time) (*transport.Delivery, int, bool) {
	for l := range ls.waiting {
		if !now.Before(l.due) {
			delete(ls.waiting, l)
			l.due = time.Time{}
			ls.schedule(l, now)
		}
	}
	for len(ls.ready) > 0 {
		l := ls.ready[0]
		ls.ready[0] = nil
		ls.ready = ls.ready[1:]
		l.ready = false
		if !l.runnable(now) {
			continue
		}
		l.busy = true
		ls.n--
		return l.items[0].d, l.items[0].runs, true
	}
	return nil, 0, false
}

func (ls *lanes) done(d *transport.Delivery, v transport.Verdict, now time.Time) (bool, []*transport.Delivery, time.Duration) {
	l := ls.byKey[d.Key]
	if l == nil || len(l.items) == 0 || l.items[0].d != d {
		return false, nil, 0
	}
	l.busy = false
	if v.Kind != transport.Retried {
		ls.pop(l, now)
		return false, nil, 0
	}
	// The key waits for its head's retry, here.
	l.items[0].runs++
	d.Attempt++
	l.due = now.Add(v.Delay)
	ls.waiting[l] = struct{}{}
	ls.n++
	var release []*transport.Delivery
	for len(l.items) > ls.perKey {
		last := l.items[len(l.items)-1]
		if last.runs > 0 {
			break // ran already: it stays (handing it back would spend an attempt)
		}
		l.items = l.items[:len(l.items)-1]
		ls.outside(l, last.d, v.Delay, now)
		release = append(release, last.d)
		ls.n--
	}
	return true, release, max(v.Delay, minGapWait)
}

// pop removes l's head (settled, or dropped with its lease) and lets the
// next one of the key run.
func (ls *lanes) pop(l *lane, now time.Time) {
	l.items[0] = item{}
	l.items = l.items[1:]
	if len(l.items) == 0 && len(l.released) == 0 {
		delete(ls.byKey, l.key)
		return
	}
	ls.schedule(l, now)
}

func (ls *lanes) drop(d *transport.Delivery) {
	l := ls.byKey[d.Key]
	if l == nil || len(l.items) == 0 || l.items[0].d != d {
		return
	}
	l.busy = false
	ls.pop(l, time.Now())
}

func (ls *lanes) len() int { return ls.n }

func (ls *lanes) each(fn func(*transport.Delivery)) {
	for _, l := range ls.byKey {
		for i, it := range l.items {
			if i == 0 && l.busy {
				continue
			}
			fn(it.d)
		}
	}
}

func (ls *lanes) empty() ([]*transport.Delivery, []int) {
	var ds []*transport.Delivery
	var runs []int
	for k, l := range ls.byKey {
		for i, it := range l.items {
			if i == 0 && l.busy {
				continue
			}
			ds = append(ds, it.d)
			runs = append(runs, it.runs)
		}
		if l.busy {
			l.items = l.items[:1]
		} else {
			delete(ls.byKey, k)
		}
	}
	ls.ready, ls.n = nil, 0
	clear(ls.waiting)
	return ds, runs
}

func (ls *lanes) nextDue() time.Time {
	var next time.Time
	for l := range ls.waiting {
		if next.IsZero() || l.due.Before(next) {
			next = l.due
		}
	}
	return next
}
