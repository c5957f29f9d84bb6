package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/transport"
)

var t0 = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)

// manualBus is a bus on a fake clock: nothing becomes due until the test
// advances the clock and ticks.
func manualBus(t *testing.T, streams ...memory.StreamConfig) (*memory.Bus, *eventstest.Clock) {
	t.Helper()
	clock := eventstest.NewClock(t0)
	if len(streams) == 0 {
		streams = []memory.StreamConfig{{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}}, {Name: "DLQ", Subjects: []string{"dlq.>"}}}
	}
	b, err := memory.NewBus(memory.Config{Streams: streams, Clock: clock})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b, clock
}

// sink collects deliveries.
type sink struct {
	mu sync.Mutex
	ds []*transport.Delivery
	ch chan *transport.Delivery
}

func newSink() *sink { return &sink{ch: make(chan *transport.Delivery, 1024)} }

func (s *sink) put(d *transport.Delivery) {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	s.ch <- d
}

// next waits for the next delivery.
func (s *sink) next(t *testing.T) *transport.Delivery {
	t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return nil
	}
}

// none asserts that nothing more was delivered: every delivery is assigned
// under the bus lock before the call that caused it returns, so once the
// consumer's goroutine has handed over all it was assigned (Idle), an empty
// channel means nothing was dispatched.
func (s *sink) none(t *testing.T, c transport.Consumer) {
	t.Helper()
	require.Eventually(t, func() bool { return memory.Idle(c) }, 10*time.Second, time.Millisecond)
	select {
	case d := <-s.ch:
		t.Fatalf("unexpected delivery of seq %d attempt %d", d.StreamSeq, d.Attempt)
	default:
	}
}

func publish(t *testing.T, b *memory.Bus, subject, id string) memory.PubAck {
	t.Helper()
	h := nats.Header{}
	if id != "" {
		h.Set(nats.MsgIdHdr, id)
	}
	ack, err := b.Publish(context.Background(), subject, h, []byte(`{"n":1}`))
	require.NoError(t, err)
	return ack
}

func consume(t *testing.T, b *memory.Bus, spec transport.ConsumerSpec) (transport.Consumer, *sink) {
	t.Helper()
	if spec.Stream == "" {
		spec.Stream = "AUTH_EVENTS"
	}
	if len(spec.FilterSubjects) == 0 {
		spec.FilterSubjects = []string{"auth.>"}
	}
	s := newSink()
	c, err := b.Consume(context.Background(), spec, s.put)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	return c, s
}
