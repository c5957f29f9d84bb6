package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

func exclusiveSpec(ackWait time.Duration) transport.ConsumerSpec {
	return transport.ConsumerSpec{
		Stream: "T", Durable: "part", FilterSubjects: []string{"t.>"},
		AckWait: ackWait, MaxAckPending: 1000, Exclusive: true,
	}
}

func publishN(t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	for range n {
		require.NoError(t, nc.Publish("t.x", []byte("m")))
	}
	require.NoError(t, nc.Flush())
}

func seqs(rec *sinkRecorder) []uint64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []uint64
	for _, d := range rec.ds {
		out = append(out, d.StreamSeq)
	}
	return out
}

func TestTransport_an_exclusive_durable_delivers_to_one_consumer_and_hands_over_at_once(t *testing.T) {
	srv, trA := newTransportEnv(t, 10)
	trB, err := jetstream.NewTransport(srv.Connect(t), jetstream.TransportConfig{Heartbeat: 200 * time.Millisecond})
	require.NoError(t, err)
	// A long AckWait: the pin's timeout (AckWait + 3 heartbeats) is far
	// away, so B receiving soon after A's handover is the handover.
	spec := exclusiveSpec(time.Minute)

	recA, recB := &sinkRecorder{}, &sinkRecorder{}
	a, err := trA.Consume(context.Background(), spec, recA.sink)
	require.NoError(t, err)
	a.Credit(100)
	require.Eventually(t, func() bool { return recA.len() == 10 }, 10*time.Second, 5*time.Millisecond)

	b, err := trB.Consume(context.Background(), spec, recB.sink)
	require.NoError(t, err)
	t.Cleanup(b.Stop)
	b.Credit(100)
	require.Eventually(t, func() bool {
		st, err := b.State(context.Background())
		return err == nil && st.Waiting >= 2
	}, 10*time.Second, 5*time.Millisecond, "A's and B's pulls wait at the server")
	// While A holds the pin, new messages go to A only, though B pulls.
	publishN(t, srv.Conn, 5)
	require.Eventually(t, func() bool { return recA.len() == 15 }, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, recB.len(), "the process that is not pinned receives nothing")

	recA.mu.Lock()
	for _, d := range recA.ds {
		require.NoError(t, d.Settler.Ack(context.Background(), true))
	}
	recA.mu.Unlock()
	a.Stop()
	require.NoError(t, a.(transport.Handover).Handover(context.Background()))

	publishN(t, srv.Conn, 5)
	require.Eventually(t, func() bool { return recB.len() == 5 }, 20*time.Second, 5*time.Millisecond,
		"B receives after the handover, long before the pin would time out (%s)", trA.PinnedTTL(spec))
	assert.Equal(t, []uint64{16, 17, 18, 19, 20}, seqs(recB))
	assert.Equal(t, 15, recA.len(), "nothing more reached A")
}

func TestTransport_an_exclusive_durables_crashed_owner_is_replaced_and_its_messages_come_first(t *testing.T) {
	srv, _ := newTransportEnv(t, 10)
	ncA := srv.Connect(t)
	trA, err := jetstream.NewTransport(ncA, jetstream.TransportConfig{Heartbeat: 200 * time.Millisecond})
	require.NoError(t, err)
	trB, err := jetstream.NewTransport(srv.Connect(t), jetstream.TransportConfig{Heartbeat: 200 * time.Millisecond})
	require.NoError(t, err)
	spec := exclusiveSpec(time.Second)

	recA, recB := &sinkRecorder{}, &sinkRecorder{}
	a, err := trA.Consume(context.Background(), spec, recA.sink)
	require.NoError(t, err)
	a.Credit(100)
	require.Eventually(t, func() bool { return recA.len() == 10 }, 10*time.Second, 5*time.Millisecond)
	// A settles the first five, then its process dies with 6-10 in
	// flight: no stop, no handover.
	recA.mu.Lock()
	for _, d := range recA.ds[:5] {
		require.NoError(t, d.Settler.Ack(context.Background(), true))
	}
	recA.mu.Unlock()
	ncA.Close()

	b, err := trB.Consume(context.Background(), spec, recB.sink)
	require.NoError(t, err)
	t.Cleanup(b.Stop)
	b.Credit(100)
	publishN(t, srv.Conn, 5)

	require.Eventually(t, func() bool { return recB.len() == 10 }, 30*time.Second, 10*time.Millisecond,
		"B takes over once the pin timed out (%s)", trA.PinnedTTL(spec))
	got := seqs(recB)
	assert.ElementsMatch(t, []uint64{6, 7, 8, 9, 10}, got[:5], "the dead owner's messages first: nothing overtakes them")
	assert.ElementsMatch(t, []uint64{11, 12, 13, 14, 15}, got[5:])
}
