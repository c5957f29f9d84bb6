package jetstream_test

import (
	"context"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// TestTransport_filter_outside_the_stream_is_refused_before_the_durable_exists:
// Consume refuses a filter the stream cannot store (typed, naming both), and
// creates no durable; a filter inside the stream's subjects, or any filter on
// a stream that sources others (whose subjects are the sources'), is taken.
func TestTransport_filter_outside_the_stream_is_refused_before_the_durable_exists(t *testing.T) {
	srv, tr := newTransportEnv(t, 0) // stream T on t.>
	ctx := context.Background()
	spec := func(durable string, filters ...string) transport.ConsumerSpec {
		return transport.ConsumerSpec{Stream: "T", Durable: durable, FilterSubjects: filters, MaxAckPending: 10}
	}

	_, err := tr.Consume(ctx, spec("outside", "t.x", "u.>"), func(*transport.Delivery) {})
	require.ErrorIs(t, err, envelope.ErrInvalidConfig)
	require.ErrorIs(t, err, transport.ErrSubscribe)
	assert.Contains(t, err.Error(), `filter "u.>" is outside stream T's subjects [t.>]`)
	_, err = srv.JS.Consumer(ctx, "T", "outside")
	assert.ErrorIs(t, err, natsjs.ErrConsumerNotFound, "refused before the durable was created")

	for _, filter := range []string{"t.x", "t.*", ">", "*.x"} {
		cons, err := tr.Consume(ctx, spec("inside", filter), func(*transport.Delivery) {})
		require.NoError(t, err, "filter %q overlaps t.>", filter)
		cons.Stop()
	}

	_, err = srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "AGG", Sources: []*natsjs.StreamSource{{Name: "T"}}})
	require.NoError(t, err)
	cons, err := tr.Consume(ctx, transport.ConsumerSpec{Stream: "AGG", Durable: "agg", FilterSubjects: []string{"t.x"}, MaxAckPending: 10}, func(*transport.Delivery) {})
	require.NoError(t, err, "a sourcing stream stores its sources' subjects: not judged")
	cons.Stop()
}
