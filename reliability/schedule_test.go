//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// The schedules scenarios: events published with jetstream.At to fire 1 to
// 30 seconds later (about a tenth of them cancelled), consumed by a router.
// Asserted: none is handled (nor stored) before its time, every one not
// cancelled is stored exactly once on its subject and handled, no
// cancelled one ever fires. The lateness (stored time, and first handler
// call, minus the due time) is printed as p50 / p99 / max.
const (
	schedStream  = "SCHED"
	schedSubject = "sched.reminded" // also the event type
	schedMarker  = "sched.marker"
)

// TestSchedules_fire_on_time_once_each: one server, 10,000 schedules (1,000
// under -short, 1-10 s ahead).
func TestSchedules_fire_on_time_once_each(t *testing.T) {
	srv := eventstest.NewServer(t)
	r := schedules(t, "schedules: %d At %s-%s ahead, some cancelled", srv.URL, nil)
	record(t, r)
}

// TestSchedules_R3_stream_leader_SIGKILLed_before_they_fire: the same on a
// 3-node cluster (R3 stream), its leader SIGKILLed once every schedule is
// stored and before any fires. The schedules are 10 to 30 s ahead here (5
// to 15 s under -short) so that storing them all, in three copies, is done
// before the first is due.
func TestSchedules_R3_stream_leader_SIGKILLed_before_they_fire(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	r := schedules(t, "schedules R3: %d At %s-%s ahead, stream leader SIGKILLed before they fire", strings.Join(c.URLs(), ","), c)
	record(t, r)
}

// schedules runs one scenario on the servers at url (a cluster when c is
// not nil: R3, its stream leader killed before the first schedule is due);
// name is formatted with the number of events and the range of due times.
func schedules(t *testing.T, name, url string, c *eventstest.Cluster) row {
	n := size(t, 10000, 1000)
	first, spread := time.Second, 29*time.Second
	if testing.Short() {
		spread = 9 * time.Second
	}
	replicas := 1
	if c != nil {
		replicas = 3
		first, spread = 10*time.Second, 20*time.Second
		if testing.Short() {
			first, spread = 5*time.Second, 10*time.Second
		}
	}
	admin := connectTo(t, url, "reliability-admin")
	applyStreams(t, admin, replicas)
	js, err := natsjs.New(admin)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioWait)
	defer cancel()
	_, err = jetstream.Apply(ctx, js, jetstream.StreamSpec{Name: schedStream, Subjects: []string{"sched.>"}, Replicas: replicas, AllowMsgSchedules: true})
	require.NoError(t, err)

	// The router records the first handler call of every event.
	led := newLedger(nil)
	var mu sync.Mutex
	handledAt := map[string]time.Time{}
	markers := make(chan struct{}, 1)
	rt, err := router.New(connectTo(t, url, "reliability-router"), router.Config{
		Stream: schedStream, AckWait: 5 * time.Second, Heartbeat: failoverHeartbeat, MaxDeliver: 1000, Logger: routerLogger(),
	})
	require.NoError(t, err)
	rt.Group("reminders", "sched.>").
		On(schedSubject, func(_ context.Context, e *envelope.Event) error {
			now := time.Now()
			mu.Lock()
			if _, ok := handledAt[e.ID]; !ok {
				handledAt[e.ID] = now
			}
			mu.Unlock()
			led.handle(e.ID)
			return nil
		}).
		On(schedMarker, func(context.Context, *envelope.Event) error {
			select {
			case markers <- struct{}{}:
			default:
			}
			return nil
		})
	runCtx, stopRouter := context.WithCancel(ctx)
	defer stopRouter()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(runCtx) }()
	select {
	case <-rt.Running():
	case err := <-runErr:
		t.Fatalf("router: %v", err)
	}

	// Schedule every event, re-publishing failures with the same event and
	// time (same schedule subject: a second copy replaces the first).
	pubConn := connectTo(t, url, "reliability-publisher")
	pub := newPublisher(t, pubConn, led)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	start := time.Now()
	due := make(map[string]time.Time, n)
	events := make(map[string]*envelope.Event, n)
	var cancelled []string
	for i := range n {
		e := envelope.NewEvent(schedSubject, "reliability", "org-1", time.Now().UTC(), map[string]any{"n": i})
		e.ID = fmt.Sprintf("sched-%d", i)
		at := time.Now().Add(first + time.Duration(rng.Int64N(int64(spread))))
		due[e.ID], events[e.ID] = at, e
		// Cancelled: one in five of those due in the second half (about
		// one in ten in all), far enough ahead that the cancel certainly
		// comes first.
		if i%5 == 0 && at.Sub(start) > first+spread/2 {
			cancelled = append(cancelled, e.ID)
		}
		led.add(e)
		_ = pub.PublishAsync(ctx, schedSubject, e, transport.At(at))
	}
	for round := 0; ; round++ {
		require.NoError(t, pub.Flush(ctx), "schedule round %d", round)
		retry := led.takeRetries()
		if len(retry) == 0 {
			break
		}
		for _, e := range retry {
			_ = pub.PublishAsync(ctx, schedSubject, e, transport.At(due[e.ID]))
		}
	}
	scheduled := time.Since(start)
	acked, _, _, _ := led.progress()
	require.Equal(t, n, acked, "every schedule stored")

	// The cluster: kill the stream leader now, before the first is due.
	var notes []string
	if c != nil {
		fired := storedOn(t, js, schedSubject)
		require.Zero(t, fired, "a schedule fired before the kill (scheduling took %s)", scheduled)
		var leader int
		require.True(t, waitUntil(time.Minute, func() bool { leader, err = c.StreamLeader(schedStream); return err == nil }), "no stream leader: %v", err)
		require.NoError(t, c.Kill(leader))
		killed := time.Now()
		require.True(t, waitUntil(time.Minute, func() bool { _, err = c.StreamLeader(schedStream); return err == nil }), "no new stream leader: %v", err)
		notes = append(notes, fmt.Sprintf("leader node %d killed %s after the schedules were stored, new leader after %s",
			leader, killed.Sub(start.Add(scheduled)).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond)))
		require.NoError(t, c.Restart(leader))
	}

	// Cancel, from several goroutines (each cancel is a few requests).
	cancelStart := time.Now()
	var wg sync.WaitGroup
	var cancelErr error
	var cmu sync.Mutex
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if err := pub.CancelSchedule(ctx, schedSubject, id); err != nil {
					cmu.Lock()
					cancelErr = errors.Join(cancelErr, fmt.Errorf("%s (due in %s): %w", id, time.Until(due[id]).Round(time.Millisecond), err))
					cmu.Unlock()
				}
			}
		}()
	}
	for _, id := range cancelled {
		work <- id
	}
	close(work)
	wg.Wait()
	require.NoError(t, cancelErr)
	cancelTook := time.Since(cancelStart)
	led.mu.Lock()
	for _, id := range cancelled {
		delete(led.events, id)
		delete(led.acked, id)
	}
	led.mu.Unlock()

	// A marker due after the last schedule: once the router handled it,
	// every schedule has had its time. Progress is counted from the first
	// due time (before it, nothing is to be handled).
	var earliest, last time.Time
	for _, at := range due {
		if at.After(last) {
			last = at
		}
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	waitUntil(time.Until(earliest)+time.Second, func() bool { return !time.Now().Before(earliest) })
	led.startClock()
	marker := envelope.NewEvent(schedMarker, "reliability", "org-1", time.Now().UTC(), nil)
	markerPub, err := jetstream.NewPublisher(pubConn) // outside the ledger
	require.NoError(t, err)
	defer markerPub.Close()
	require.NoError(t, markerPub.Publish(ctx, schedMarker, marker, transport.At(last.Add(time.Second))))
	select {
	case <-markers:
	case err := <-runErr:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(time.Until(last) + scenarioWait):
		t.Fatal("the marker scheduled after the last schedule was not handled")
	}
	require.True(t, waitUntil(scenarioWait, led.done), "not every schedule handled")

	var r row
	r.Scenario = fmt.Sprintf(name, n, first, first+spread)
	led.counts(&r)
	r.Took = time.Since(start)
	if c != nil {
		r.Kills = 1
	}
	r.Asserted = true

	// Stored copies, and the lateness of each event.
	stored := storedTimes(t, js, schedSubject)
	var early, copies []string
	var storedLate, handledLate []time.Duration
	for id, at := range due {
		if slices.Contains(cancelled, id) {
			assert.Empty(t, stored[id], "cancelled %s fired", id)
			continue
		}
		if len(stored[id]) != 1 {
			copies = append(copies, fmt.Sprintf("%s stored %d times", id, len(stored[id])))
			continue
		}
		mu.Lock()
		h := handledAt[id]
		mu.Unlock()
		if stored[id][0].Before(at) || h.Before(at) {
			early = append(early, fmt.Sprintf("%s due %s, stored %s, handled %s", id, at.Format(time.RFC3339Nano), stored[id][0].Format(time.RFC3339Nano), h.Format(time.RFC3339Nano)))
		}
		storedLate = append(storedLate, stored[id][0].Sub(at))
		handledLate = append(handledLate, h.Sub(at))
	}
	assert.Empty(t, early, "fired early")
	assert.Empty(t, copies, "each schedule fires exactly once")
	assert.Zero(t, r.Lost, "schedules never handled")
	assert.Zero(t, r.DeadLettered)
	notes = append(notes,
		fmt.Sprintf("%d scheduled in %s, %d cancelled in %s; lateness stored %s, handled %s",
			n, scheduled.Round(time.Millisecond), len(cancelled), cancelTook.Round(time.Millisecond), percentiles(storedLate), percentiles(handledLate)))
	r.Notes = strings.Join(notes, "; ")
	t.Log(r.Notes)

	stopRouter()
	select {
	case err := <-runErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("router Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("router Run did not return")
	}
	require.NoError(t, closeWithin(pub, time.Minute))
	return r
}

// percentiles is "p50 X, p99 Y, max Z" of ds.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", at(0.50).Round(time.Millisecond), at(0.99).Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}

// storedOn is the number of messages SCHED holds on subject.
func storedOn(t *testing.T, js natsjs.JetStream, subject string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, schedStream)
	require.NoError(t, err)
	info, err := st.Info(ctx, natsjs.WithSubjectFilter(subject))
	require.NoError(t, err)
	return info.State.Subjects[subject]
}

// storedTimes reads every message SCHED holds on subject: the times each
// event id was stored at.
func storedTimes(t *testing.T, js natsjs.JetStream, subject string) map[string][]time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioWait)
	defer cancel()
	want := storedOn(t, js, subject)
	cons, err := js.OrderedConsumer(ctx, schedStream, natsjs.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	out := map[string][]time.Time{}
	for got := uint64(0); got < want; {
		batch, err := cons.Fetch(1000, natsjs.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			require.NoError(t, err)
			id := nats.Header(m.Headers()).Get(marshaler.HeaderID)
			out[id] = append(out[id], md.Timestamp)
			n++
		}
		require.NoError(t, batch.Error())
		require.NotZero(t, n, "read %d of %d", got, want)
		got += uint64(n)
	}
	return out
}
