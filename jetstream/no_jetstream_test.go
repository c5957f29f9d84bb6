package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

// noJetStreamAdvice is the action every ErrNoJetStream error ends with.
const noJetStreamAdvice = "start nats-server with JetStream (-js)"

// TestNoJetStream_every_request_is_ErrNoJetStream: against a real
// nats-server started without JetStream, every entry point that asks for
// JetStream fails with ErrNoJetStream and says how to enable it. A publish
// does not blame a missing stream (ErrNoStream): no stream can exist there.
func TestNoJetStream_every_request_is_ErrNoJetStream(t *testing.T) {
	srv := eventstest.NewServerWithConfig(t, embedded.Config{NoJetStream: true})
	noJS := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, transport.ErrNoJetStream)
		assert.NotErrorIs(t, err, transport.ErrNoStream, "not a missing stream: no JetStream at all")
		assert.Contains(t, err.Error(), noJetStreamAdvice)
	}
	reports := &pubReports{}
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{OnAsyncError: reports.handle})
	const subject = "auth.user.created"

	t.Run("Publish", func(t *testing.T) {
		err := p.Publish(pubCtx(t), subject, pubEvent(t, "user.created"))
		noJS(t, err)
		assert.ErrorIs(t, err, transport.ErrPublish)
	})
	t.Run("PublishAsync", func(t *testing.T) {
		require.NoError(t, p.PublishAsync(pubCtx(t), subject, pubEvent(t, "user.created")), "queued")
		require.NoError(t, p.Flush(pubCtx(t)))
		got := reports.all()
		require.Len(t, got, 1)
		noJS(t, got[0].Err)
	})
	t.Run("PublishBatch", func(t *testing.T) {
		err := p.PublishBatch(pubCtx(t), subject, pubEvent(t, "user.created"), pubEvent(t, "user.created"))
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		for _, e := range be.Errs {
			noJS(t, e)
		}
	})
	t.Run("Apply", func(t *testing.T) {
		_, err := jetstream.ApplyWithLogger(pubCtx(t), srv.JS, watermill.NopLogger{}, jetstream.AuthEventsStream())
		noJS(t, err)
	})
	t.Run("Ensure", func(t *testing.T) {
		_, err := jetstream.Ensure(pubCtx(t), srv.JS, watermill.NopLogger{}, jetstream.AuthEventsStream())
		noJS(t, err)
	})
	t.Run("Transport.Consume", func(t *testing.T) {
		tr, err := jetstream.NewTransport(srv.Conn, jetstream.TransportConfig{})
		require.NoError(t, err)
		_, err = tr.Consume(pubCtx(t), transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d", FilterSubjects: []string{"auth.>"}}, func(*transport.Delivery) {})
		noJS(t, err)
		assert.ErrorIs(t, err, transport.ErrSubscribe)
	})
	t.Run("Subscriber.Subscribe", func(t *testing.T) {
		tr, err := jetstream.NewTransport(srv.Conn, jetstream.TransportConfig{})
		require.NoError(t, err)
		s, err := subscriber.New(tr, subscriber.Config{Stream: "AUTH_EVENTS", Durable: "d"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = s.Subscribe(ctx, subject)
		noJS(t, err)
	})
}
