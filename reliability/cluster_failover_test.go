//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// failoverHeartbeat is the router's Heartbeat in the R3 scenario: a pull
// silent for two of them is declared dead and recovered.
const failoverHeartbeat = 500 * time.Millisecond

// resumeBound is the generous bound asserted on the time from a new leader
// to the next handled event (the measured value is printed; the target is
// two heartbeats, 1s).
const resumeBound = 30 * time.Second

// TestCluster_R3_leader_kills_ridden_through: a 3-node cluster of server
// processes holds an R3 stream; a publisher (async, every failed publish
// retried with the same event id) sends events at a steady rate and a
// router (Heartbeat 500ms) consumes them, both connected to every node.
// Mid-load the stream leader is SIGKILLed, then (once it is back) the
// consumer leader: neither the publisher nor the router is restarted or
// told anything. Asserted: every event acked in the end, 0 acked events
// lost, nothing dead-lettered, Run still running, and the router resumed
// (handled an event) within resumeBound of each new leader; the measured
// time is printed next to the two-heartbeat target (asserted by
// TestCluster_R3_router_resumes_within_two_heartbeats_of_a_new_consumer_leader).
func TestCluster_R3_leader_kills_ridden_through(t *testing.T) {
	const name = "R3: stream leader + consumer leader SIGKILLed"
	r, kills := failover(t, name, []string{leaderStream, leaderConsumer})
	record(t, r)
	assert.Equal(t, r.Events, r.Acked, "every event acked in the end (failures retried)")
	assert.Zero(t, r.Lost, "acked events lost")
	assert.Zero(t, r.DeadLettered, "dead-lettered")
	for _, kl := range kills {
		assert.LessOrEqual(t, kl.resumed.Sub(kl.ready), resumeBound, "%s: resumed after the new leader", kl.what)
	}
}

// resumeSlack is what the measurement itself may add to a resume time: the
// leaders are polled over HTTP (three nodes, every 20ms) and the handler
// calls are timestamped in the test.
const resumeSlack = 250 * time.Millisecond

// TestCluster_R3_router_resumes_within_two_heartbeats_of_a_new_consumer_leader:
// the consumer leader SIGKILLed twice; from the moment the stream and its
// consumer have leaders again (and an event to handle), the router handles
// the next event within 2 heartbeats. It failed before fce44cc: the
// recovery's consumer info, sent while the consumer had no leader, waited
// the whole 10s APITimeout (measured 3.7-7.2s after the new leaders).
func TestCluster_R3_router_resumes_within_two_heartbeats_of_a_new_consumer_leader(t *testing.T) {
	const name = "R3: consumer leader SIGKILLed x2 (2-heartbeat resume)"
	r, kills := failover(t, name, []string{leaderConsumer, leaderConsumer})
	record(t, r)
	assert.Zero(t, r.Lost, "acked events lost")
	for i, kl := range kills {
		assert.LessOrEqual(t, kl.resumed.Sub(kl.ready), 2*failoverHeartbeat+resumeSlack,
			"kill %d (node %d): from the new leaders to the next handled event", i+1, kl.node)
	}
}

// What failover kills.
const (
	leaderStream   = "stream leader"
	leaderConsumer = "consumer leader"
)

// failoverKill is one leader kill and what followed.
type failoverKill struct {
	what            string
	node            int
	bothLeaders     bool // the node led both the stream and its consumer
	backlog         int  // acked events not handled yet at the kill
	killed, elected time.Time
	pubResumed      time.Time // first publish acked after the kill
	ready           time.Time // new leaders, and an event to handle
	resumed         time.Time // first handler call after ready
}

// failover runs the R3 scenario, SIGKILLing the leaders named by whats one
// after the other (each restarted before the next kill), and returns its
// row (Notes: the resume times) and the kills.
func failover(t *testing.T, name string, whats []string) (row, []failoverKill) {
	minEvents := size(t, 20000, 5000)
	rate := 2000 // events per second
	if testing.Short() {
		rate = 1000
	}
	const durable = "failover"

	c := eventstest.NewCluster(t, 3)
	url := strings.Join(c.URLs(), ",")
	applyStreams(t, connectTo(t, url, "reliability-admin"), 3)

	led := newLedger(nil)
	pub := newPublisher(t, connectTo(t, url, "reliability-publisher"), led)
	rt, err := router.New(connectTo(t, url, "reliability-router"), router.Config{
		Stream:     relStream,
		AckWait:    5 * time.Second,
		Heartbeat:  failoverHeartbeat,
		MaxDeliver: 1000, // a failover is not the event's fault: never dead-letter for it
		Logger:     routerLogger(),
	})
	require.NoError(t, err)
	rt.Group(durable, "rel.>").On(relSubject, func(_ context.Context, e *envelope.Event) error {
		led.handle(e.ID)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runCtx, stopRouter := context.WithCancel(ctx)
	defer stopRouter()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(runCtx) }()
	select {
	case <-rt.Running():
	case err := <-runErr:
		t.Fatalf("router: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("router not running after a minute")
	}

	// The publisher: rate events a second until told to stop, and at
	// least minEvents; the retrier re-publishes every failure.
	var published atomic.Int64
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	start := time.Now()
	led.startClock()
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick := max(1, rate/100)
		now := time.Now().UTC()
		for i := 0; ; {
			select {
			case <-stopPub:
				if i >= minEvents {
					return
				}
			default:
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range perTick {
				e := newEvent("r3", i, now)
				led.add(e)
				_ = pub.PublishAsync(ctx, relSubject, e) // a failure comes back through the observer
				i++
				published.Store(int64(i))
			}
		}
	}()
	retrierDone := startRetrier(ctx, pub, led)

	var kills []failoverKill
	for k, what := range whats {
		at := int64((k + 1) * minEvents / (len(whats) + 1))
		require.True(t, waitUntil(scenarioWait, func() bool { return published.Load() >= at }), "publisher stuck at %d", published.Load())
		var old, streamLeader, consumerLeader int
		var err1, err2 error
		require.True(t, waitUntil(time.Minute, func() bool {
			streamLeader, err1 = c.StreamLeader(relStream)
			consumerLeader, err2 = c.ConsumerLeader(relStream, durable)
			if what == leaderStream {
				old = streamLeader
			} else {
				old = consumerLeader
			}
			return err1 == nil && err2 == nil
		}), "no leaders: %v, %v", err1, err2)
		kl := failoverKill{what: what, node: old, bothLeaders: streamLeader == consumerLeader, backlog: led.backlog()}
		require.NoError(t, c.Kill(old))
		kl.killed = time.Now()
		// Elected: the stream and its consumer both have a running leader
		// again (a node may lead both).
		require.True(t, waitUntil(time.Minute, func() bool {
			_, err1 = c.StreamLeader(relStream)
			_, err2 = c.ConsumerLeader(relStream, durable)
			return err1 == nil && err2 == nil
		}), "%s kill: no new leaders a minute after it: %v, %v", what, err1, err2)
		kl.elected = time.Now()
		var ok bool
		require.True(t, waitUntil(resumeBound, func() bool {
			kl.pubResumed, ok = led.firstAckAfter(kl.killed)
			return ok
		}), "%s kill: no publish acked within %s of the new leaders", what, resumeBound)
		// The router can only resume once there is an event to handle: at
		// once when events were waiting at the kill, else from the first
		// one stored after it.
		kl.ready = kl.elected
		if kl.backlog == 0 && kl.pubResumed.After(kl.ready) {
			kl.ready = kl.pubResumed
		}
		require.True(t, waitUntil(resumeBound, func() bool {
			kl.resumed, ok = led.firstCallAfter(kl.ready)
			return ok
		}), "%s kill: nothing handled within %s of the new leaders", what, resumeBound)
		kills = append(kills, kl)
		t.Logf("%s (node %d%s) SIGKILLed with %d events waiting: new leaders after %s; first publish acked %s after the kill; next event handled %s after new leaders and an event to handle (target: 2 heartbeats = %s)",
			what, old, map[bool]string{true: ", leader of both"}[kl.bothLeaders], kl.backlog,
			kl.elected.Sub(kl.killed).Round(time.Millisecond), kl.pubResumed.Sub(kl.killed).Round(time.Millisecond),
			kl.resumed.Sub(kl.ready).Round(time.Millisecond), 2*failoverHeartbeat)
		require.NoError(t, c.Restart(old), "restart node %d", old)
	}
	close(stopPub)
	select {
	case <-pubDone:
	case <-time.After(scenarioWait):
		t.Fatal("publisher loop did not end")
	}

	deadline := time.Now().Add(scenarioWait)
	for !led.done() {
		if time.Now().After(deadline) {
			acked, handled, retries, failures := led.progress()
			t.Errorf("not every event acked and handled %s after the last kill: published %d, acked %d, handled %d, queued retries %d, failed attempts %d",
				scenarioWait, published.Load(), acked, handled, retries, failures)
			break
		}
		select {
		case err := <-runErr:
			t.Fatalf("router stopped by itself: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(start)
	health := rt.Health(ctx)
	cancel()
	<-retrierDone
	stopRouter()
	select {
	case err := <-runErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("router Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("router Run did not return a minute after its context was cancelled")
	}
	require.NoError(t, closeWithin(pub, time.Minute))

	r := row{Scenario: name, Kills: len(kills), Took: took, DeadLettered: rt.Stats().DeadLettered, Asserted: true}
	led.counts(&r)
	_, _, _, failures := led.progress()
	var stalls uint64
	for _, g := range health.Groups {
		stalls += g.Stalls
	}
	var resumes []string
	for _, kl := range kills {
		d := kl.resumed.Sub(kl.ready)
		resumes = append(resumes, fmt.Sprintf("%s: %s (within 2 heartbeats: %v)", kl.what, d.Round(time.Millisecond), d <= 2*failoverHeartbeat))
	}
	t.Logf("%s: %d failed publish attempts retried, %d stalls recovered by the router; resumed after the new leader: %s",
		name, failures, stalls, strings.Join(resumes, "; "))
	r.Notes = "resumed after the new leaders: " + strings.Join(resumes, "; ")
	return r, kills
}

// startRetrier re-publishes every failed publish the ledger queued (same
// event, hence the same Nats-Msg-Id: the stream stores it once), in rounds
// 100ms apart so that a cluster in an election is not hammered, until ctx
// ends; the returned channel closes then.
func startRetrier(ctx context.Context, pub *jetstream.Publisher, led *ledger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-led.retryCh:
			}
			for _, e := range led.takeRetries() {
				_ = pub.PublishAsync(ctx, relSubject, e)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return done
}
