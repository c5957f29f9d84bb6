package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// A service's test of "paused for 24 hours" on the manual clock, through
// the real router: nothing is handled during the 24 hours, the group is
// ready and paused until the deadline, and the first Tick after it delivers
// without a Resume. The test takes milliseconds.
func TestBus_group_paused_for_24h_resumes_by_itself_on_the_manual_clock(t *testing.T) {
	b, clock := manualBus(t)
	p, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)
	r, err := router.NewWithTransport(b, router.Config{Stream: "AUTH_EVENTS", Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	got := make(chan *envelope.Event, 10)
	r.Group("mailer", "auth.user.>").On("user.reminded", func(_ context.Context, e *envelope.Event) error {
		got <- e
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-r.Running()

	until := clock.Now().Add(24 * time.Hour)
	require.NoError(t, r.Pause(ctx, "mailer", until))
	e := reminder()
	require.NoError(t, p.Publish(ctx, "auth.user.reminded", e))
	for _, step := range []time.Duration{time.Hour, 12 * time.Hour, 11*time.Hour - time.Second} {
		clock.Advance(step)
		b.Tick()
		h := r.Health(ctx)
		require.True(t, h.Ready, "a paused group is ready")
		require.Len(t, h.Groups, 1)
		g := h.Groups[0]
		assert.Equal(t, transport.StateActive, g.State)
		assert.Equal(t, until, g.PausedUntil, "at %s", clock.Now())
		assert.EqualValues(t, 1, g.Pending, "the event waits in the durable")
		assert.Zero(t, g.AckPending, "nothing delivered")
	}
	select {
	case <-got:
		t.Fatal("handled while paused")
	default:
	}

	clock.Advance(time.Second)
	b.Tick()
	select {
	case h := <-got:
		assert.Equal(t, e.ID, h.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("not handled after the pause ended")
	}
	assert.True(t, r.Health(ctx).Groups[0].PausedUntil.IsZero())
}

// What JetStream does, on the bus: a paused durable delivers nothing, new
// messages nor redeliveries (of a nak), to its consumers, however long;
// held messages stay settleable; other durables are not touched; Resume
// delivers at once.
func TestBus_pause_holds_new_messages_and_redeliveries_of_one_durable(t *testing.T) {
	b, clock := manualBus(t)
	paused, ps := consume(t, b, transport.ConsumerSpec{Durable: "paused", AckWait: time.Minute})
	other, os := consume(t, b, transport.ConsumerSpec{Durable: "other"})
	publish(t, b, "auth.user.created", "1")
	paused.Credit(2)
	first := ps.next(t)

	until := clock.Now().Add(time.Hour)
	require.NoError(t, b.Pause(context.Background(), "AUTH_EVENTS", "paused", until))
	st, err := paused.State(context.Background())
	require.NoError(t, err)
	assert.Equal(t, until, st.PausedUntil)
	require.NoError(t, first.Settler.Nak(0), "held before the pause: still settleable")
	paused.Credit(1) // its credit back, as the router gives it
	publish(t, b, "auth.user.created", "2")
	b.Tick()
	ps.none(t, paused)

	other.Credit(2)
	assert.Equal(t, []uint64{1, 2}, []uint64{os.next(t).StreamSeq, os.next(t).StreamSeq}, "another durable of the stream is not paused")
	clock.Advance(59 * time.Minute)
	b.Tick()
	ps.none(t, paused)

	require.NoError(t, b.Resume(context.Background(), "AUTH_EVENTS", "paused"))
	d1, d2 := ps.next(t), ps.next(t)
	assert.Equal(t, []uint64{1, 2}, []uint64{d1.StreamSeq, d2.StreamSeq})
	assert.Equal(t, []uint64{2, 1}, []uint64{d1.Attempt, d2.Attempt}, "the nacked one redelivered first")
	st, err = paused.State(context.Background())
	require.NoError(t, err)
	assert.True(t, st.PausedUntil.IsZero())
}

func TestBus_pause_errors(t *testing.T) {
	b, clock := manualBus(t)
	require.NoError(t, b.AddConsumer(transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d", FilterSubjects: []string{"auth.>"}}))
	ctx := context.Background()
	tests := []struct {
		name            string
		stream, durable string
		until           time.Time
		want            error
	}{
		{"a durable that does not exist", "AUTH_EVENTS", "nobody", clock.Now().Add(time.Hour), transport.ErrNoConsumer},
		{"a stream that does not exist", "NOPE", "d", clock.Now().Add(time.Hour), transport.ErrNoStream},
		{"a time the bus's clock passed", "AUTH_EVENTS", "d", clock.Now().Add(-time.Second), envelope.ErrInvalidConfig},
		{"the bus's now", "AUTH_EVENTS", "d", clock.Now(), envelope.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, b.Pause(ctx, tt.stream, tt.durable, tt.until), tt.want)
		})
	}
	st, err := b.ConsumerState("AUTH_EVENTS", "d")
	require.NoError(t, err)
	assert.True(t, st.PausedUntil.IsZero())
	assert.ErrorIs(t, b.Resume(ctx, "AUTH_EVENTS", "nobody"), memory.ErrNoConsumer)
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Pause(ctx, "AUTH_EVENTS", "d", clock.Now().Add(time.Hour)), transport.ErrClosed)
}
