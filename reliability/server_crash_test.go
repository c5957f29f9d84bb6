//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// scenarioWait bounds a scenario from its last kill to every event handled.
const scenarioWait = 5 * time.Minute

// TestServer_SIGKILLed_during_async_publish_and_consume: one nats-server
// process, SIGKILLed and restarted `kills` times while a publisher sends
// events asynchronously (every failed publish retried with the same event,
// hence the same Nats-Msg-Id) and a router consumes them. With
// sync_interval always, no event whose publish was acked may be lost. The
// same run with nats-server's default lazy fsync is reported, not asserted:
// a SIGKILL leaves the kernel's page cache intact, so it shows what a
// process crash does, not a power loss. A third run adds Idempotency
// (jetstream.KVStore on the same server) to show the duplicates it
// absorbs: an event handled and marked processed whose ack died with the
// server is skipped when redelivered.
func TestServer_SIGKILLed_during_async_publish_and_consume(t *testing.T) {
	n := size(t, 20000, 5000)
	tests := []struct {
		name        string
		syncAlways  bool
		idempotency bool
		assert      bool
	}{
		{"server SIGKILL x3, sync_interval always", true, false, true},
		{"server SIGKILL x3, lazy fsync (default)", false, false, false},
		{"server SIGKILL x3, sync_interval always, Idempotency (KVStore)", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serverCrash(t, tt.name, n, 3, tt.syncAlways, tt.idempotency)
			r.Asserted = tt.assert
			record(t, r)
			if !tt.assert {
				return
			}
			assert.Equal(t, n, r.Acked, "every event acked in the end (failures retried)")
			assert.Zero(t, r.Lost, "acked events lost")
			assert.Zero(t, r.DeadLettered, "dead-lettered")
		})
	}
}

func serverCrash(t *testing.T, name string, n, kills int, syncAlways, idempotency bool) row {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1, SyncAlways: syncAlways})
	url := strings.Join(c.URLs(), ",")
	admin, err := natsjs.New(c.Connect(t))
	require.NoError(t, err)
	applyCtx, applyCancel := context.WithTimeout(ctx, time.Minute)
	_, err = jetstream.Apply(applyCtx, admin,
		jetstream.StreamSpec{Name: "REL", Subjects: []string{"rel.>"}, Duplicates: 10 * time.Minute},
		jetstream.StreamSpec{Name: "DLQ", Subjects: []string{"dlq.>"}})
	applyCancel()
	require.NoError(t, err)

	events := make([]*envelope.Event, n)
	for i := range events {
		events[i] = envelope.NewEvent("rel.created", "reliability", "org-1", time.Now().UTC(), map[string]interface{}{"n": i})
	}
	led := newLedger(events)

	connect := func(who string) *nats.Conn {
		nc, err := jetstream.Connect(url, jetstream.WithName(who), jetstream.WithLogger(watermill.NopLogger{}),
			jetstream.WithReconnectBackoff(20*time.Millisecond, 250*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	pubConn, subConn := connect("reliability-publisher"), connect("reliability-router")

	pub, err := jetstream.NewPublisher(pubConn,
		jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{led.observer}, OnAsyncError: func(jetstream.AsyncError) {}, Logger: watermill.NopLogger{}, AckTimeout: 2 * time.Second, MaxPending: 512})
	require.NoError(t, err)

	cfg := router.Config{
		Stream:     "REL",
		AckWait:    5 * time.Second,
		Heartbeat:  time.Second,
		MaxDeliver: 1000, // a crash is not the event's fault: never dead-letter for it
		Logger:     routerLogger(),
	}
	if idempotency {
		storeCtx, storeCancel := context.WithTimeout(ctx, time.Minute)
		store, err := jetstream.NewKVStore(storeCtx, subConn, jetstream.KVStoreConfig{Bucket: idempotencyBucket})
		storeCancel()
		require.NoError(t, err)
		cfg.Idempotency = store
	}
	rt, err := router.New(subConn, cfg)
	require.NoError(t, err)
	rt.Group("reliability", "rel.>").On("rel.created", func(_ context.Context, e *envelope.Event) error {
		led.handle(e.ID)
		return nil
	})
	runErr := make(chan error, 1)
	runCtx, stopRouter := context.WithCancel(ctx)
	defer stopRouter()
	go func() { runErr <- rt.Run(runCtx) }()
	select {
	case <-rt.Running():
	case err := <-runErr:
		t.Fatalf("router: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("router not running after a minute")
	}

	// The killer: SIGKILL and restart the server each time the publisher
	// passes a kill point, one kill at a time.
	killAt := make(chan int, kills)
	killed := make(chan error, 1)
	go func() {
		var err error
		for range kills {
			select {
			case <-killAt:
			case <-ctx.Done():
				killed <- ctx.Err()
				return
			}
			if err = c.Kill(0); err == nil {
				err = c.Restart(0)
			}
			if err != nil {
				break
			}
		}
		killed <- err
	}()

	// The retrier: every failed publish is sent again, same event.
	retrierDone := make(chan struct{})
	go func() {
		defer close(retrierDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-led.retryCh:
			}
			for _, e := range led.takeRetries() {
				_ = pub.PublishAsync(ctx, "rel.created", e) // a failure comes back through the observer
			}
			// Let a restarting server come back before the next round.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	step := n / (kills + 1)
	for i, e := range events {
		_ = pub.PublishAsync(ctx, "rel.created", e)
		if i > 0 && i%step == 0 && i/step <= kills {
			killAt <- i
		}
	}
	require.NoError(t, <-killed, "kill and restart")

	deadline := time.Now().Add(scenarioWait)
	for !led.done() {
		if time.Now().After(deadline) {
			acked, handled, retries, failures := led.progress()
			t.Errorf("not every event acked and handled %s after the last kill: acked %d, handled %d, queued retries %d, failed attempts %d",
				scenarioWait, acked, handled, retries, failures)
			break
		}
		select {
		case err := <-runErr:
			t.Fatalf("router stopped by itself: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(start)
	cancel() // stops the retrier
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

	r := row{Scenario: name, Kills: kills, Took: took, DeadLettered: rt.Stats().DeadLettered}
	led.counts(&r)
	_, _, _, failures := led.progress()
	t.Logf("%s: %d failed publish attempts retried", name, failures)
	return r
}

func closeWithin(p *jetstream.Publisher, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("publisher Close still running after %s", d)
	}
}
