package jetstream_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

const smallMaxPayload = 64 << 10

// sizedEvent is an event whose message, as published on subject (payload
// and headers as nats.go writes them), is exactly size bytes.
func sizedEvent(t *testing.T, subject string, size int) *envelope.Event {
	t.Helper()
	ev := func(pad int) *envelope.Event {
		return envelope.NewEvent("user.created", "auth-service", "org-123", pubTime, map[string]any{"blob": strings.Repeat("x", pad)})
	}
	msg, err := marshaler.Default().EventToNATS(subject, ev(0), marshaler.Relations{})
	require.NoError(t, err)
	base := wireBytes(msg)
	require.Less(t, base, size)
	e := ev(size - base)
	msg, err = marshaler.Default().EventToNATS(subject, e, marshaler.Relations{})
	require.NoError(t, err)
	require.Equal(t, size, wireBytes(msg))
	return e
}

// wireBytes counts a message as nats.go does against the server's max
// payload: the data and the header block ("NATS/1.0\r\n", one
// "key: value\r\n" per value, "\r\n").
func wireBytes(m *nats.Msg) int {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// TestPublisher_event_above_the_servers_max_payload_is_refused_before_anything_is_sent:
// on a server with a 64 KiB max_payload, an event over it is refused by
// sync, async and batch publishes alike, as an invalid event (ErrTooLarge,
// not ErrPublish: nothing was sent), and a batch holding one sends none of
// its events. An event of exactly the max payload is stored: the publisher
// counts as the server does.
func TestPublisher_event_above_the_servers_max_payload_is_refused_before_anything_is_sent(t *testing.T) {
	srv := eventstest.NewServerWithConfig(t, embedded.Config{MaxPayload: smallMaxPayload})
	require.EqualValues(t, smallMaxPayload, srv.Conn.MaxPayload())
	pubStream(t, srv.JS, "AUTH", "auth.>")
	reports := &pubReports{}
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{OnAsyncError: reports.handle})
	const subject = "auth.user.created"
	big := sizedEvent(t, subject, 100<<10)

	tooLarge := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, envelope.ErrTooLarge)
		assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
		assert.NotErrorIs(t, err, transport.ErrPublish, "nothing was sent")
		assert.Contains(t, err.Error(), "65536", "names the server's max payload")
		assert.Contains(t, err.Error(), big.ID)
	}

	t.Run("batch", func(t *testing.T) {
		err := p.PublishBatch(pubCtx(t), subject, pubEvent(t, "user.created"), big, pubEvent(t, "user.created"))
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		require.Len(t, be.Errs, 3)
		assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
		tooLarge(t, be.Errs[1])
		assert.ErrorIs(t, be.Errs[2], transport.ErrNotSent)
	})
	t.Run("sync", func(t *testing.T) {
		tooLarge(t, p.Publish(pubCtx(t), subject, big))
	})
	t.Run("async", func(t *testing.T) {
		tooLarge(t, p.PublishAsync(pubCtx(t), subject, big))
		require.NoError(t, p.Flush(pubCtx(t)))
		assert.Empty(t, reports.all(), "refused, so never reported as an async failure")
	})
	t.Run("watermill MessagePublisher", func(t *testing.T) {
		m := marshaler.Default()
		small, err := m.ToMessage(pubEvent(t, "user.created"))
		require.NoError(t, err)
		large, err := m.ToMessage(big)
		require.NoError(t, err)
		err = p.MessagePublisher().Publish(subject, small, large)
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
		tooLarge(t, be.Errs[1])
	})
	assert.Zero(t, pubCount(t, srv.JS, "AUTH"), "nothing stored")
	assert.Zero(t, p.Stats().Published, "nothing handed to NATS")

	exact := sizedEvent(t, subject, smallMaxPayload)
	require.NoError(t, p.Publish(pubCtx(t), subject, exact), "exactly the max payload is accepted")
	require.NoError(t, p.PublishBatch(pubCtx(t), subject, sizedEvent(t, subject, smallMaxPayload)))
	tooLarge2 := sizedEvent(t, subject, smallMaxPayload+1)
	err := p.Publish(context.Background(), subject, tooLarge2)
	require.ErrorIs(t, err, envelope.ErrTooLarge, "one byte over is refused")
	assert.NotErrorIs(t, err, transport.ErrPublish)
	assert.EqualValues(t, 2, pubCount(t, srv.JS, "AUTH"))
}
