//go:build reliability

package reliability_test

import (
	"fmt"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
)

// TestRouter_process_SIGKILLed_mid_batch_loses_nothing: a router process
// (this binary re-executed, router.New on its own connection) consumes a
// stream of events and is SIGKILLed `kills` times while it holds a batch
// (the durable has unacked deliveries at each kill); each time a new
// process takes its place on the same durable. Its handler stores a result
// record before returning, so an acked event has a record. In the end the
// durable has nothing pending or unacked and every event has a record:
// every event was handled at least once and none was acked unhandled.
// Duplicates (handled, then killed before the ack left) are reported,
// without and with Idempotency (jetstream.KVStore), which skips a
// redelivered event whose processed mark was stored.
func TestRouter_process_SIGKILLed_mid_batch_loses_nothing(t *testing.T) {
	tests := []struct {
		name        string
		idempotency bool
	}{
		{"router process SIGKILL x3 mid-batch", false},
		{"router process SIGKILL x3 mid-batch, Idempotency (KVStore)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routerCrash(t, tt.name, 3, tt.idempotency)
			record(t, r)
			assert.Equal(t, r.Events, r.Acked, "every event published")
			assert.Zero(t, r.Lost, "events acked by the router without a handler having stored their result")
			assert.Zero(t, r.DeadLettered, "dead-lettered")
		})
	}
}

func routerCrash(t *testing.T, name string, kills int, idempotency bool) row {
	n := size(t, 20000, 5000)
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1, SyncAlways: true})
	url := c.URL(0)
	nc := connectTo(t, url, "reliability-test")
	applyStreams(t, nc, 1)
	js, err := natsjs.New(nc)
	require.NoError(t, err)

	events := makeEvents("rc", n)
	led := newLedger(events)
	publishAll(t, newPublisher(t, nc, led), led, events)
	readResults(t, nc, func(who, id string) { led.handleBy(id, who) })

	spec := routerSpec{
		URL: url, Stream: relStream, Durable: "crash", Filter: "rel.>", EventType: relSubject,
		AckWait:     3 * time.Second, // how soon a dead process's batch is redelivered
		Heartbeat:   time.Second,
		Concurrency: 4,
		MaxDeliver:  1000, // a crash is not the event's fault: never dead-letter for it
		Idempotency: idempotency,
	}
	start := time.Now()
	led.startClock()
	spec.Name = "router-0"
	proc := startRouterProc(t, spec)
	for k := 1; k <= kills; k++ {
		at := k * n / (kills + 1)
		ok := waitUntil(scenarioWait, func() bool { return led.handledCount() >= at || proc.exitedByItself() })
		require.True(t, ok, "kill %d: %d events not handled within %s (handled %d)", k, at, scenarioWait, led.handledCount())
		require.False(t, proc.exitedByItself(), "%s exited by itself", proc.name)
		inFlight := ackPending(t, js, spec.Durable)
		require.NoError(t, proc.kill())
		t.Logf("kill %d: SIGKILLed %s after %d events handled, %d unacked on the durable", k, proc.name, led.handledCount(), inFlight)
		assert.Positive(t, inFlight, "kill %d: the process held unacked deliveries (mid-batch)", k)
		spec.Name = fmt.Sprintf("router-%d", k)
		proc = startRouterProc(t, spec)
	}

	var state string
	done := waitUntil(scenarioWait, func() bool {
		var drained bool
		drained, state = consumerDrained(js, relStream, spec.Durable)
		return drained && led.done()
	})
	took := time.Since(start)
	assert.True(t, done, "not every event handled and acked within %s of the last kill: handled %d of %d, durable %s",
		scenarioWait, led.handledCount(), n, state)
	require.NoError(t, proc.stop())

	r := row{Scenario: name, Kills: kills, Took: took, DeadLettered: streamMsgs(t, js, dlqStream), Asserted: true}
	led.counts(&r)
	calls, _ := led.split()
	t.Logf("%s: handler calls per process %v; durable at the end: %s", name, calls, state)
	return r
}

// ackPending is durable's count of delivered, unacked messages.
func ackPending(t *testing.T, js natsjs.JetStream, durable string) int {
	t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, relStream, durable)
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	return info.NumAckPending
}
