//go:build reliability

package reliability_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
)

// Names shared by the scenarios.
const (
	relStream  = "REL"
	relSubject = "rel.created" // also the event type
	dlqStream  = "DLQ"
)

// applyStreams creates the events stream (rel.>, a 10-minute duplicates
// window so that a publish retried with the same event id is stored once),
// the dead-letter stream and the results stream of router processes, each
// with replicas copies.
func applyStreams(t *testing.T, nc *nats.Conn, replicas int) {
	t.Helper()
	admin, err := natsjs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = jetstream.Apply(ctx, admin,
		jetstream.StreamSpec{Name: relStream, Subjects: []string{"rel.>"}, Duplicates: 10 * time.Minute, Replicas: replicas},
		jetstream.StreamSpec{Name: dlqStream, Subjects: []string{"dlq.>"}, Replicas: replicas},
		jetstream.StreamSpec{Name: resultsStream, Subjects: []string{resultsPrefix + ".>"}, Replicas: replicas})
	require.NoError(t, err)
}

// connectTo connects the way a service does (jetstream.Connect: reconnects
// forever, here with a short backoff), closed when the test ends.
func connectTo(t *testing.T, url, who string) *nats.Conn {
	t.Helper()
	nc, err := jetstream.Connect(url, jetstream.WithName(who), jetstream.WithLogger(watermill.NopLogger{}),
		jetstream.WithReconnectBackoff(20*time.Millisecond, 250*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// makeEvents returns n events of type relSubject with the ids prefix-0 ..
// prefix-(n-1).
func makeEvents(prefix string, n int) []*envelope.Event {
	events := make([]*envelope.Event, n)
	now := time.Now().UTC()
	for i := range events {
		events[i] = newEvent(prefix, i, now)
	}
	return events
}

func newEvent(prefix string, i int, now time.Time) *envelope.Event {
	e := envelope.NewEvent(relSubject, "reliability", "org-1", now, map[string]interface{}{"n": i})
	e.ID = fmt.Sprintf("%s-%d", prefix, i)
	return e
}

// newPublisher is an async publisher whose outcomes go to led (a failure
// is queued for a retry with the same event), closed when the test ends.
func newPublisher(t *testing.T, nc *nats.Conn, led *ledger) *jetstream.Publisher {
	t.Helper()
	pub, err := jetstream.NewPublisher(nc,
		jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{led.observer}, OnAsyncError: func(jetstream.AsyncError) {}, Logger: watermill.NopLogger{}, AckTimeout: 2 * time.Second, MaxPending: 512})
	require.NoError(t, err)
	t.Cleanup(func() { _ = closeWithin(pub, time.Minute) })
	return pub
}

// publishAll publishes events asynchronously and re-publishes every failed
// one (same event, same id) until the stream acked them all, for at most
// scenarioWait.
func publishAll(t *testing.T, pub *jetstream.Publisher, led *ledger, events []*envelope.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioWait)
	defer cancel()
	batch := events
	for round := 0; len(batch) > 0; round++ {
		for _, e := range batch {
			_ = pub.PublishAsync(ctx, relSubject, e) // a failure comes back through the observer
		}
		require.NoError(t, pub.Flush(ctx), "publish round %d", round)
		batch = led.takeRetries()
	}
	acked, _, _, _ := led.progress()
	require.Equal(t, len(events), acked, "every event acked")
}

// streamMsgs is the number of messages stream holds.
func streamMsgs(t *testing.T, js natsjs.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.Msgs
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// routerLogger is the router's logger: none, or with RELIABILITY_LOGS=1
// its warn and error lines (stalls, recoveries, failures) on stderr, and
// with RELIABILITY_LOGS=debug every line.
func routerLogger() watermill.LoggerAdapter {
	level := slog.LevelWarn
	switch os.Getenv("RELIABILITY_LOGS") {
	case "":
		return watermill.NopLogger{}
	case "debug":
		level = slog.LevelDebug
	}
	return middleware.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}
