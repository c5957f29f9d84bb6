package router_test

import (
	"context"
	"errors"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
)

// TestRouter_group_whose_filter_the_stream_does_not_store_is_refused_before_Run_consumes:
// a group on "orders.nothing-here" over a stream of "auth.>" would wait
// forever for events that can never arrive. Run refuses it at start, on both
// transports, naming the filter and the stream's subjects, before any durable
// is bound.
func TestRouter_group_whose_filter_the_stream_does_not_store_is_refused_before_Run_consumes(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			r := f.newRouter(t, fastConfig())
			g := r.Group("outside", "orders.nothing-here")
			g.On("order.placed", func(ctx context.Context, e *envelope.Event) error { return nil })
			require.NoError(t, g.Err(), "the filter is a valid subject: only the stream can tell")

			err := r.Run(ctxT(t))
			require.Error(t, err, "Run must not run a group that can never receive an event")
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
			assert.ErrorIs(t, err, events.ErrInvalidConfig, "the root facade's sentinel matches")
			assert.Contains(t, err.Error(), `"orders.nothing-here"`, "names the filter")
			assert.Contains(t, err.Error(), "auth.>", "names the stream's subjects")
			assert.Contains(t, err.Error(), stream)

			if js, ok := f.(jsFixture); ok {
				_, err := js.e.srv.JS.Consumer(ctxT(t), stream, "outside")
				assert.True(t, errors.Is(err, natsjs.ErrConsumerNotFound), "no durable was created: %v", err)
			}
		})
	}
}

// TestRouter_group_with_one_filter_outside_the_stream_is_refused: every
// filter of a group must be stored by the stream, not only one of them.
func TestRouter_group_with_one_filter_outside_the_stream_is_refused(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			r := f.newRouter(t, fastConfig())
			g := r.Group("mixed", "auth.user.>", "billing.invoice.*")
			g.On("user.created", func(ctx context.Context, e *envelope.Event) error { return nil })
			err := r.Run(ctxT(t))
			require.ErrorIs(t, err, envelope.ErrInvalidConfig)
			assert.Contains(t, err.Error(), `"billing.invoice.*"`)
			assert.NotContains(t, err.Error(), `"auth.user.>" is outside`)
		})
	}
}
