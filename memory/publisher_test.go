package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/transport"
)

// A service written against events.Publisher takes the bus's publisher.
var _ events.Publisher = (*memory.Publisher)(nil)

func userCreated() *envelope.Event {
	return envelope.NewEvent("user.created", "auth-service", "org-123", t0, map[string]any{"user_id": 42})
}

// TestPublisher_stores_byte_for_byte_what_the_jetstream_publisher_stores
// publishes the same event with the same context through both publishers:
// the stored headers and payload are identical.
func TestPublisher_stores_byte_for_byte_what_the_jetstream_publisher_stores(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}})
	require.NoError(t, err)
	jp, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = jp.Close() })

	b, _ := manualBus(t)
	mp, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)

	pctx := envelope.WithRelations(ctx, "corr-1", "cause-1")
	e := userCreated()
	require.NoError(t, jp.Publish(pctx, "auth.user.created", e))
	require.NoError(t, mp.Publish(pctx, "auth.user.created", e))

	onServer, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	inBus := b.Messages("auth.>")
	require.Len(t, inBus, 1)
	assert.Equal(t, onServer.Data, inBus[0].Data)
	assert.Equal(t, nats.Header(onServer.Header), inBus[0].Header)
	assert.Equal(t, "corr-1", inBus[0].Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "cause-1", inBus[0].Header.Get(marshaler.HeaderCausationID))

	// Same id again: a duplicate, a success, nothing stored.
	ack, err := mp.PublishAck(ctx, "auth.user.created", e)
	require.NoError(t, err)
	assert.True(t, ack.Duplicate)
	assert.Len(t, b.Messages("auth.>"), 1)
}

func TestPublisher_errors_are_typed(t *testing.T) {
	b, _ := manualBus(t)
	p, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	bad := userCreated()
	bad.Source = ""
	assert.ErrorIs(t, p.Publish(ctx, "auth.user.*", userCreated()), envelope.ErrInvalidSubject)
	assert.ErrorIs(t, p.Publish(ctx, "auth.user.created", nil), envelope.ErrInvalidEvent)
	assert.ErrorIs(t, p.Publish(ctx, "auth.user.created", bad), envelope.ErrInvalidEvent)
	err = p.Publish(ctx, "billing.paid", userCreated())
	assert.ErrorIs(t, err, transport.ErrNoStream)
	assert.ErrorIs(t, err, transport.ErrPublish)
	// The shared sentinels (events.ErrNoStream, ...): service code matching
	// them behaves the same on the bus as on JetStream.
	assert.ErrorIs(t, err, transport.ErrNoStream)
	assert.ErrorIs(t, err, transport.ErrPublish)
	assert.ErrorIs(t, err, transport.ErrNoStream)
	require.NoError(t, p.Close())
	assert.ErrorIs(t, p.Publish(ctx, "auth.user.created", userCreated()), transport.ErrClosed)
	assert.ErrorIs(t, p.Publish(ctx, "auth.user.created", userCreated()), transport.ErrClosed)
	assert.Empty(t, b.Messages(">"))
}

func TestPublisher_async_failure_reaches_the_handler_once_before_PublishAsync_returns(t *testing.T) {
	b, _ := manualBus(t)
	var got []memory.AsyncError
	p, err := memory.NewPublisher(b, memory.PublisherConfig{OnAsyncError: func(ae memory.AsyncError) { got = append(got, ae) }})
	require.NoError(t, err)
	e := userCreated()
	require.NoError(t, p.PublishAsync(context.Background(), "billing.paid", e), "queued: the failure is reported, not returned")
	require.Len(t, got, 1)
	assert.Equal(t, e.ID, got[0].EventID)
	assert.ErrorIs(t, got[0], transport.ErrNoStream)
	require.NoError(t, p.PublishAsync(context.Background(), "auth.user.created", e))
	assert.Len(t, got, 1)
	assert.NoError(t, p.Flush(context.Background()))
	assert.Len(t, b.Messages("auth.>"), 1)
}

func TestPublisher_batch_with_an_invalid_event_stores_nothing(t *testing.T) {
	b, _ := manualBus(t)
	p, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)
	bad := userCreated()
	bad.Type = ""
	err = p.PublishBatch(context.Background(), "auth.user.created", userCreated(), bad, userCreated())
	var be *memory.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 3, be.Failed())
	assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
	assert.ErrorIs(t, be.Errs[1], envelope.ErrInvalidEvent)
	assert.Empty(t, b.Messages(">"))
	require.NoError(t, p.PublishBatch(context.Background(), "auth.user.created", userCreated(), userCreated()))
	assert.Len(t, b.Messages(">"), 2)
}

func TestMessagePublisher_carries_events_only_with_the_context_relations(t *testing.T) {
	b, _ := manualBus(t)
	mp, err := memory.NewMessagePublisher(b, nil)
	require.NoError(t, err)
	raw := message.NewMessage("1", []byte("not an event"))
	assert.ErrorIs(t, mp.Publish("auth.user.created", raw), envelope.ErrInvalidEvent)
	assert.Empty(t, b.Messages(">"))

	wm, err := marshaler.Default().ToMessage(userCreated())
	require.NoError(t, err)
	wm.SetContext(envelope.WithCorrelationID(context.Background(), "corr-9"))
	require.NoError(t, mp.Publish("auth.user.created", wm))
	got := b.Messages(">")
	require.Len(t, got, 1)
	assert.Equal(t, "corr-9", got[0].Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, wm.UUID, got[0].Header.Get(nats.MsgIdHdr))
	require.NoError(t, mp.Close())
	assert.ErrorIs(t, mp.Publish("auth.user.created", wm), transport.ErrClosed)
}

// recv receives from ch within 10s.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		var zero T
		return zero
	}
}
