package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/transport"
)

// TestPublisher_event_above_the_bus_max_payload_is_refused_before_anything_is_stored:
// the bus publisher applies the JetStream publisher's rule: an event over
// the max payload is an invalid event (ErrTooLarge, not ErrPublish) for
// sync, async and batch publishes, and a batch holding one stores none.
func TestPublisher_event_above_the_bus_max_payload_is_refused_before_anything_is_stored(t *testing.T) {
	b, err := memory.NewBus(memory.Config{MaxPayload: 64 << 10, Streams: []memory.StreamConfig{{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	var reported []memory.AsyncError
	p, err := memory.NewPublisher(b, memory.PublisherConfig{OnAsyncError: func(ae memory.AsyncError) { reported = append(reported, ae) }})
	require.NoError(t, err)
	ctx := context.Background()
	big := envelope.NewEvent("user.created", "auth-service", "org-123", t0, map[string]any{"blob": strings.Repeat("x", 100<<10)})

	tooLarge := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, envelope.ErrTooLarge)
		assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
		assert.NotErrorIs(t, err, transport.ErrPublish, "nothing was stored")
		assert.Contains(t, err.Error(), "65536")
	}
	err = p.PublishBatch(ctx, "auth.user.created", userCreated(), big, userCreated())
	var be *memory.BatchError
	require.ErrorAs(t, err, &be)
	assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
	tooLarge(t, be.Errs[1])
	assert.ErrorIs(t, be.Errs[2], transport.ErrNotSent)

	tooLarge(t, p.Publish(ctx, "auth.user.created", big))
	tooLarge(t, p.PublishAsync(ctx, "auth.user.created", big))
	assert.Empty(t, reported)

	mp, err := memory.NewMessagePublisher(b, nil)
	require.NoError(t, err)
	small, err := marshaler.Default().ToMessage(userCreated())
	require.NoError(t, err)
	large, err := marshaler.Default().ToMessage(big)
	require.NoError(t, err)
	err = mp.Publish("auth.user.created", small, large)
	require.ErrorAs(t, err, &be)
	assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
	tooLarge(t, be.Errs[1])

	assert.Empty(t, b.Messages(">"), "nothing stored")
}
