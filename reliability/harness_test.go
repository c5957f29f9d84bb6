//go:build reliability

package reliability_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
)

// row is one line of the table.
type row struct {
	Scenario     string
	Events       int
	Acked        int           // distinct events whose publish a stream confirmed
	Lost         int           // acked, never handled
	Duplicates   int           // handler calls beyond the first, per event
	DeadLettered uint64        // router.Stats().DeadLettered
	LongestStall time.Duration // longest gap between two first-time handles
	Kills        int
	Took         time.Duration
	Asserted     bool
	Notes        string // printed under the table
}

var (
	tableMu sync.Mutex
	table   []row
)

func record(t *testing.T, r row) {
	t.Helper()
	t.Logf("%s: events %d, acked %d, lost %d, duplicates %d, dead-lettered %d, longest without progress %s, kills %d, took %s",
		r.Scenario, r.Events, r.Acked, r.Lost, r.Duplicates, r.DeadLettered, r.LongestStall.Round(time.Millisecond), r.Kills, r.Took.Round(time.Millisecond))
	tableMu.Lock()
	table = append(table, r)
	tableMu.Unlock()
}

// printTable writes the rows collected by the scenarios that ran.
func printTable() {
	tableMu.Lock()
	defer tableMu.Unlock()
	if len(table) == 0 {
		return
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tevents\tacked\tlost\tduplicates\tdead-lettered\tlongest without progress\tkills\ttook\tasserted")
	for _, r := range table {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%v\n", r.Scenario, r.Events, r.Acked, r.Lost, r.Duplicates,
			r.DeadLettered, r.LongestStall.Round(time.Millisecond), r.Kills, r.Took.Round(100*time.Millisecond), r.Asserted)
	}
	_ = w.Flush()
	for _, r := range table {
		if r.Notes != "" {
			fmt.Printf("  %s: %s\n", r.Scenario, r.Notes)
		}
	}
}

// size is a scenario's number of events: RELIABILITY_EVENTS when set (every
// scenario but the soak), else short under -short (the reduced form .ci/run
// runs), else full.
func size(t *testing.T, full, short int) int {
	t.Helper()
	return sizeFrom(t, "RELIABILITY_EVENTS", full, short)
}

func sizeFrom(t *testing.T, env string, full, short int) int {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if testing.Short() {
			return short
		}
		return full
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 {
		t.Fatalf("%s=%q: want an integer >= 100", env, v)
	}
	return n
}

// ledger counts every event by id: published, acked by the stream, handled
// by the router; and queues the publishes to retry.
type ledger struct {
	mu       sync.Mutex
	events   map[string]*envelope.Event
	acked    map[string]bool
	handled  map[string]int
	failures int // publish attempts that failed (and were retried)

	retry   []string
	retryCh chan struct{} // signalled when retry gets an id

	start, last time.Time
	longest     time.Duration
	calls       []time.Time    // every handler call, in order (resume measurements)
	acks        []time.Time    // every publish ack, in order
	by          map[string]int // handler calls per router process
	firstBy     map[string]int // first-time handles per router process
}

func newLedger(events []*envelope.Event) *ledger {
	l := &ledger{
		events:  make(map[string]*envelope.Event, len(events)),
		acked:   make(map[string]bool, len(events)),
		handled: make(map[string]int, len(events)),
		retryCh: make(chan struct{}, 1),
		start:   time.Now(),
		by:      map[string]int{},
		firstBy: map[string]int{},
	}
	l.last = l.start
	for _, e := range events {
		l.events[e.ID] = e
	}
	return l
}

// observer reports each publish's outcome: acked, or queued for a retry
// with the same event (same id: the stream drops a second copy).
func (l *ledger) observer(ctx context.Context, info jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
	id := info.EventID
	return ctx, func(r jetstream.PublishResult) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if r.Err == nil {
			l.acked[id] = true
			l.acks = append(l.acks, time.Now())
			return
		}
		l.failures++
		if !l.acked[id] {
			l.retry = append(l.retry, id)
			select {
			case l.retryCh <- struct{}{}:
			default:
			}
		}
	}
}

// takeRetries empties the retry queue.
func (l *ledger) takeRetries() []*envelope.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*envelope.Event, 0, len(l.retry))
	for _, id := range l.retry {
		if !l.acked[id] {
			out = append(out, l.events[id])
		}
	}
	l.retry = l.retry[:0]
	return out
}

// startClock restarts the progress clock: the longest time without
// progress counts from now (call it when consuming starts).
func (l *ledger) startClock() {
	l.mu.Lock()
	l.start, l.last, l.longest = time.Now(), time.Now(), 0
	l.mu.Unlock()
}

// add makes e one of the ledger's events (for scenarios that generate
// their events while they run).
func (l *ledger) add(e *envelope.Event) {
	l.mu.Lock()
	l.events[e.ID] = e
	l.mu.Unlock()
}

// handle records one handler call.
func (l *ledger) handle(id string) { l.handleBy(id, "") }

// handleBy records one handler call by the router process who.
func (l *ledger) handleBy(id, who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now() // under the lock: calls stays in time order
	if l.handled[id] == 0 {
		if gap := now.Sub(l.last); gap > l.longest {
			l.longest = gap
		}
		l.last = now
		l.firstBy[who]++
	}
	l.handled[id]++
	l.by[who]++
	l.calls = append(l.calls, now)
}

// firstCallAfter is the time of the first handler call after t, if any.
func (l *ledger) firstCallAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.calls), func(i int) bool { return l.calls[i].After(t) })
	if i == len(l.calls) {
		return time.Time{}, false
	}
	return l.calls[i], true
}

// firstAckAfter is the time of the first publish ack after t, if any.
func (l *ledger) firstAckAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.acks), func(i int) bool { return l.acks[i].After(t) })
	if i == len(l.acks) {
		return time.Time{}, false
	}
	return l.acks[i], true
}

// backlog is the number of acked events not handled yet.
func (l *ledger) backlog() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.acked {
		if l.handled[id] == 0 {
			n++
		}
	}
	return n
}

// handledCount is the number of distinct events handled.
func (l *ledger) handledCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled)
}

// split is the handler calls and first-time handles per router process.
func (l *ledger) split() (calls, first map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.by), maps.Clone(l.firstBy)
}

// handledIDs are the distinct events handled (a copy).
func (l *ledger) handledIDs() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.handled)
}

// done reports whether every event is acked and handled, and no retry is
// queued.
func (l *ledger) done() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) != len(l.events) || len(l.retry) > 0 {
		return false
	}
	for id := range l.acked {
		if l.handled[id] == 0 {
			return false
		}
	}
	return true
}

// counts fills a row's counters.
func (l *ledger) counts(r *row) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Events, r.Acked, r.LongestStall = len(l.events), len(l.acked), l.longest
	for id := range l.acked {
		if l.handled[id] == 0 {
			r.Lost++
		}
	}
	for _, n := range l.handled {
		if n > 1 {
			r.Duplicates += n - 1
		}
	}
}

func (l *ledger) progress() (acked, handled, retries, failures int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.handled), len(l.retry), l.failures
}

// waitUntil polls cond every 20ms until it holds, for at most d; false when
// d passed first.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
