//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// TestRouter_poison_under_load_dead_letters_exactly_the_permanent_failures:
// while events are published at full speed, a router (Concurrency 4)
// handles them; 1 % fail permanently (middleware.Permanent) and 1 % fail
// twice, then succeed. The dead-letter stream ends up holding exactly the
// permanent ones, once each, with reason "permanent"; the twice-failing
// ones are handled on their third delivery; every other event is handled
// once, and nothing is handled twice.
func TestRouter_poison_under_load_dead_letters_exactly_the_permanent_failures(t *testing.T) {
	n := size(t, 20000, 5000)
	const name = "poison: 1% permanent, 1% fail twice"
	kind := func(i int) string {
		switch i % 100 {
		case 0:
			return "permanent"
		case 1:
			return "flaky"
		}
		return "ok"
	}

	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1})
	nc := connectTo(t, c.URL(0), "reliability-test")
	applyStreams(t, nc, 1)
	js, err := natsjs.New(nc)
	require.NoError(t, err)

	events := makeEvents("p", n)
	led := newLedger(events) // handled = the handler returned nil
	var permanent, flaky int
	for i := range n {
		switch kind(i) {
		case "permanent":
			permanent++
		case "flaky":
			flaky++
		}
	}
	var callsMu sync.Mutex
	calls := make(map[string]int, n)

	rt, err := router.New(connectTo(t, c.URL(0), "reliability-router"), router.Config{
		Stream:      relStream,
		Concurrency: 4,
		Backoff:     transport.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:      routerLogger(),
	})
	require.NoError(t, err)
	rt.Group("poison", "rel.>").On(relSubject, func(_ context.Context, e *envelope.Event) error {
		i, err := strconv.Atoi(strings.TrimPrefix(e.ID, "p-"))
		if err != nil {
			return middleware.Permanent(fmt.Errorf("event id %q", e.ID))
		}
		callsMu.Lock()
		calls[e.ID]++
		call := calls[e.ID]
		callsMu.Unlock()
		switch kind(i) {
		case "permanent":
			return middleware.Permanent(errors.New("poison: never valid"))
		case "flaky":
			if call <= 2 {
				return fmt.Errorf("poison: transient failure %d", call)
			}
		}
		led.handle(e.ID)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
	case err := <-runErr:
		t.Fatalf("router: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("router not running after a minute")
	}

	start := time.Now()
	led.startClock()
	publishAll(t, newPublisher(t, nc, led), led, events)
	var dlq uint64
	done := waitUntil(scenarioWait, func() bool {
		dlq = streamMsgs(t, js, dlqStream)
		drained, _ := consumerDrained(js, relStream, "poison")
		return drained && led.handledCount() == n-permanent && dlq >= uint64(permanent)
	})
	took := time.Since(start)
	assert.True(t, done, "not settled within %s: handled %d of %d, dead letters %d of %d", scenarioWait, led.handledCount(), n-permanent, dlq, permanent)
	cancel()
	select {
	case err := <-runErr:
		assert.NoError(t, err, "router Run")
	case <-time.After(time.Minute):
		t.Error("router Run did not return a minute after its context was cancelled")
	}

	// The dead-letter stream, read back: which events, for what reason.
	letters := readDeadLetters(t, js, int(streamMsgs(t, js, dlqStream)))
	wrong := 0
	for id, reason := range letters {
		i, err := strconv.Atoi(strings.TrimPrefix(id, "p-"))
		if err != nil || kind(i) != "permanent" || reason != middleware.ReasonPermanent {
			wrong++
			if wrong <= 10 {
				t.Errorf("dead letter %s: reason %q", id, reason)
			}
		}
	}

	r := row{Scenario: name, Events: n, Took: took, DeadLettered: rt.Stats().DeadLettered, Asserted: true}
	led.counts(&r)
	// Lost: an event neither handled nor dead-lettered.
	handled := led.handledIDs()
	r.Lost = 0
	for _, e := range events {
		if handled[e.ID] == 0 && letters[e.ID] == "" {
			r.Lost++
		}
	}
	callsMu.Lock()
	flakyCalls, badFlaky := 0, 0
	for i := range n {
		if kind(i) == "flaky" {
			got := calls[fmt.Sprintf("p-%d", i)]
			flakyCalls += got
			if got != 3 {
				badFlaky++
			}
		}
	}
	callsMu.Unlock()
	r.Notes = fmt.Sprintf("%d permanent, %d dead letters (%d wrong); %d fail-twice events took %d calls; retried deliveries %d",
		permanent, len(letters), wrong, flaky, flakyCalls, rt.Stats().Retried)
	record(t, r)
	assert.Equal(t, n, r.Acked)
	assert.Zero(t, r.Lost, "neither handled nor dead-lettered")
	assert.Zero(t, r.Duplicates, "handled successfully more than once")
	assert.Equal(t, permanent, len(letters), "distinct dead letters")
	assert.Equal(t, uint64(permanent), streamMsgs(t, js, dlqStream), "dead-letter stream holds each permanent failure once")
	assert.Equal(t, uint64(permanent), r.DeadLettered, "router's count")
	assert.Zero(t, wrong, "dead letters that are not permanent failures")
	assert.Zero(t, badFlaky, "fail-twice events not handled on exactly their third call")
}

// readDeadLetters reads n messages of the dead-letter stream and returns
// the original event id of each (header ce-id) with its reason.
func readDeadLetters(t *testing.T, js natsjs.JetStream, n int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, dlqStream, natsjs.OrderedConsumerConfig{})
	require.NoError(t, err)
	out := make(map[string]string, n)
	for read := 0; read < n; {
		batch, err := cons.Fetch(min(n-read, 500), natsjs.FetchMaxWait(10*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			out[m.Headers().Get(marshaler.HeaderID)] = m.Headers().Get(middleware.HeaderReason)
			got++
		}
		require.NoError(t, batch.Error())
		require.Positive(t, got, "dead letters: %d of %d read, then nothing for 10s", read, n)
		read += got
	}
	return out
}
