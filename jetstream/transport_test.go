package jetstream_test

import (
	"context"
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
	"github.com/jetevents/events/transport"
)

// sinkRecorder collects deliveries.
type sinkRecorder struct {
	mu sync.Mutex
	ds []*transport.Delivery
}

func (s *sinkRecorder) sink(d *transport.Delivery) {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
}

func (s *sinkRecorder) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ds)
}

func newTransportEnv(t *testing.T, msgs int) (*eventstest.Server, *jetstream.Transport) {
	t.Helper()
	srv := eventstest.NewServer(t)
	ctx := context.Background()
	_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	require.NoError(t, err)
	for i := range msgs {
		_, err := srv.JS.PublishMsg(ctx, &nats.Msg{Subject: "t.x", Data: []byte{byte(i)}, Header: nats.Header{"X-N": {"v"}}})
		require.NoError(t, err)
	}
	tr, err := jetstream.NewTransport(srv.Conn, jetstream.TransportConfig{Heartbeat: 200 * time.Millisecond})
	require.NoError(t, err)
	return srv, tr
}

func TestTransport_delivers_no_more_than_its_credit_with_every_delivery_field(t *testing.T) {
	srv, tr := newTransportEnv(t, 10)
	rec := &sinkRecorder{}
	cons, err := tr.Consume(context.Background(), transport.ConsumerSpec{
		Stream: "T", Durable: "d", FilterSubjects: []string{"t.>"}, AckWait: 5 * time.Second, MaxAckPending: 100,
	}, rec.sink)
	require.NoError(t, err)
	t.Cleanup(cons.Stop)

	cons.Credit(3)
	require.Eventually(t, func() bool { return rec.len() == 3 }, 5*time.Second, 5*time.Millisecond)
	// Wait for the consumer to report three delivered: none beyond the credit.
	require.Eventually(t, func() bool {
		st, err := cons.State(context.Background())
		return err == nil && st.AckPending == 3
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, rec.len(), "no more than the credit")

	d := rec.ds[0]
	assert.Equal(t, "t.x", d.Subject)
	assert.Equal(t, "T", d.Stream)
	assert.Equal(t, "d", d.Consumer)
	assert.Equal(t, uint64(1), d.StreamSeq)
	assert.Equal(t, uint64(1), d.Attempt)
	assert.Equal(t, uint64(9), d.Pending)
	assert.Equal(t, []byte{0}, d.Data)
	assert.Equal(t, "v", nats.Header(d.Header).Get("X-N"))
	assert.False(t, d.Published.IsZero())

	// Settle them: one acked, one nacked for later, one released (handed
	// back unhandled: redelivered at once, not a handler attempt).
	require.NoError(t, rec.ds[0].Settler.Ack(context.Background(), true))
	require.NoError(t, rec.ds[1].Settler.Nak(time.Hour))
	require.NoError(t, rec.ds[2].Settler.Release(0))
	cons.Credit(8) // the 7 others, and the released one again
	require.Eventually(t, func() bool { return rec.len() == 11 }, 5*time.Second, 5*time.Millisecond)
	released := 0
	for _, d := range rec.ds[3:] {
		if d.StreamSeq == 3 {
			released++
			assert.Equal(t, uint64(2), d.Attempt, "JetStream counts the release as a delivery")
			exact, err := d.Settler.ExactAttempt(context.Background())
			require.NoError(t, err)
			assert.Equal(t, uint64(1), exact, "the ledger uncounts it")
		}
		require.NoError(t, d.Settler.Ack(context.Background(), false))
	}
	assert.Equal(t, 1, released, "the released message came back")
	c, err := srv.JS.Consumer(context.Background(), "T", "d")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := c.Info(context.Background())
		return err == nil && info.AckFloor.Stream == 1 && info.NumAckPending == 1 // the one nacked for an hour
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, -1, c.CachedInfo().Config.MaxDeliver, "the server never gives up on a message")
}

func TestTransport_existing_durable_that_differs_is_updated_to_the_spec(t *testing.T) {
	srv, tr := newTransportEnv(t, 0)
	_, err := srv.JS.CreateConsumer(context.Background(), "T", natsjs.ConsumerConfig{
		Durable: "d", AckPolicy: natsjs.AckExplicitPolicy, MaxDeliver: 8, AckWait: time.Minute, FilterSubject: "t.>",
	})
	require.NoError(t, err)
	cons, err := tr.Consume(context.Background(), transport.ConsumerSpec{
		Stream: "T", Durable: "d", FilterSubjects: []string{"t.>"}, AckWait: 5 * time.Second, MaxAckPending: 100, Description: "owned",
	}, func(*transport.Delivery) {})
	require.NoError(t, err)
	t.Cleanup(cons.Stop)
	c, err := srv.JS.Consumer(context.Background(), "T", "d")
	require.NoError(t, err)
	cfg := c.CachedInfo().Config
	assert.Equal(t, -1, cfg.MaxDeliver)
	assert.Equal(t, 5*time.Second, cfg.AckWait)
	assert.Equal(t, "owned", cfg.Description)
}

func TestTransport_setup_errors_are_typed(t *testing.T) {
	_, tr := newTransportEnv(t, 0)
	tests := []struct {
		name string
		spec transport.ConsumerSpec
		want error
	}{
		{"missing stream", transport.ConsumerSpec{Stream: "NOPE", Durable: "d", FilterSubjects: []string{"x"}, AckWait: time.Second}, transport.ErrNoStream},
		{"invalid durable", transport.ConsumerSpec{Stream: "T", Durable: "a.b", FilterSubjects: []string{"x"}, AckWait: time.Second}, transport.ErrInvalidName},
		{"no filter", transport.ConsumerSpec{Stream: "T", Durable: "d", AckWait: time.Second}, envelope.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tr.Consume(context.Background(), tt.spec, func(*transport.Delivery) {})
			assert.ErrorIs(t, err, tt.want)
		})
	}
}
