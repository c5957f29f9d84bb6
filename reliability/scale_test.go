//go:build reliability

package reliability_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
)

// TestRouter_processes_share_one_durable: three router processes bound to
// one durable (Idempotency off) share the events of a stream. With nothing
// failing each event is handled exactly once, by one of them, and every
// process takes a part (the split is printed). Then a second batch, and one
// process SIGKILLed midway: the two others take over its work (what it held
// unacked is redelivered to them after AckWait), and every event of the
// batch is handled at least once, without restarting anything.
func TestRouter_processes_share_one_durable(t *testing.T) {
	const procs = 3
	n := size(t, 100000, 10000)

	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1})
	url := c.URL(0)
	nc := connectTo(t, url, "reliability-test")
	applyStreams(t, nc, 1)
	js, err := natsjs.New(nc)
	require.NoError(t, err)

	evA, evB := makeEvents("a", n), makeEvents("b", n)
	ledA, ledB := newLedger(evA), newLedger(evB)
	readResults(t, nc, func(who, id string) {
		if strings.HasPrefix(id, "a-") {
			ledA.handleBy(id, who)
		} else {
			ledB.handleBy(id, who)
		}
	})

	spec := routerSpec{
		URL: url, Stream: relStream, Durable: "scale", Filter: "rel.>", EventType: relSubject,
		AckWait:     5 * time.Second,
		Heartbeat:   time.Second,
		Concurrency: 4,
		MaxDeliver:  1000,
	}
	var running []*routerProc
	for i := range procs {
		spec.Name = fmt.Sprintf("router-%d", i)
		running = append(running, startRouterProc(t, spec))
	}

	// Nothing fails: exactly once.
	nameA := fmt.Sprintf("%d router processes, one durable", procs)
	start := time.Now()
	ledA.startClock()
	publishA := newPublisher(t, nc, ledA)
	publishAll(t, publishA, ledA, evA)
	var state string
	done := waitUntil(scenarioWait, func() bool {
		var drained bool
		drained, state = consumerDrained(js, relStream, spec.Durable)
		return drained && ledA.done()
	})
	assert.True(t, done, "batch a: not every event handled and acked within %s: handled %d of %d, durable %s",
		scenarioWait, ledA.handledCount(), n, state)
	rA := row{Scenario: nameA, Took: time.Since(start), DeadLettered: streamMsgs(t, js, dlqStream), Asserted: true}
	ledA.counts(&rA)
	callsA, _ := ledA.split()
	rA.Notes = "split " + splitOf(callsA, n)
	record(t, rA)
	assert.Equal(t, n, rA.Acked)
	assert.Zero(t, rA.Lost, "lost")
	assert.Zero(t, rA.Duplicates, "handled more than once with nothing failing")
	assert.Zero(t, rA.DeadLettered, "dead-lettered")
	for _, p := range running {
		assert.Positive(t, callsA[p.name], "%s took no part", p.name)
	}

	// One killed midway: the others take over.
	nameB := fmt.Sprintf("%d router processes, one SIGKILLed midway", procs)
	start = time.Now()
	ledB.startClock()
	publishAll(t, newPublisher(t, nc, ledB), ledB, evB)
	require.True(t, waitUntil(scenarioWait, func() bool { return ledB.handledCount() >= n/2 }),
		"batch b: half not handled within %s (%d)", scenarioWait, ledB.handledCount())
	victim := running[0]
	inFlight := ackPending(t, js, spec.Durable)
	require.NoError(t, victim.kill())
	killedAt := ledB.handledCount()
	t.Logf("SIGKILLed %s with %d of %d handled, %d unacked on the durable", victim.name, killedAt, n, inFlight)
	done = waitUntil(scenarioWait, func() bool {
		var drained bool
		drained, state = consumerDrained(js, relStream, spec.Durable)
		return drained && ledB.done()
	})
	assert.True(t, done, "batch b: not every event handled and acked within %s of the kill: handled %d of %d, durable %s",
		scenarioWait, ledB.handledCount(), n, state)
	rB := row{Scenario: nameB, Kills: 1, Took: time.Since(start), DeadLettered: streamMsgs(t, js, dlqStream), Asserted: true}
	ledB.counts(&rB)
	callsB, _ := ledB.split()
	rB.Notes = fmt.Sprintf("split %s; %s killed at %d handled", splitOf(callsB, n), victim.name, killedAt)
	record(t, rB)
	assert.Equal(t, n, rB.Acked)
	assert.Zero(t, rB.Lost, "lost: the survivors did not take over")
	assert.Zero(t, rB.DeadLettered, "dead-lettered")
	for _, p := range running[1:] {
		require.NoError(t, p.stop(), "stop %s", p.name)
	}
}

// splitOf prints the handler calls per process, and their share of n.
func splitOf(calls map[string]int, n int) string {
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d (%.1f%%)", name, calls[name], 100*float64(calls[name])/float64(n))
	}
	return strings.Join(parts, ", ")
}
