package jetstream_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

func TestMessagePublisher_round_trip(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	mp, err := jetstream.NewMessagePublisher(srv.Conn)
	require.NoError(t, err)
	var _ message.Publisher = mp

	m := marshaler.Default()
	events := []*envelope.Event{pubEvent(t, "user.created"), pubEvent(t, "user.role.updated"), pubEvent(t, "user.deleted")}
	msgs := make([]*message.Message, len(events))
	for i, e := range events {
		msgs[i], err = m.ToMessage(e)
		require.NoError(t, err)
	}
	msgs[0].Metadata.Set(marshaler.MetadataCorrelationID, "corr-meta")
	msgs[1].SetContext(envelope.WithCausationID(envelope.WithCorrelationID(pubCtx(t), "corr-ctx"), "cause-ctx"))

	require.NoError(t, mp.Publish("auth.user.changed", msgs...), "returns once every ack is in")
	_, hasCorr := msgs[1].Metadata[marshaler.MetadataCorrelationID]
	assert.False(t, hasCorr, "the caller's message is not modified")

	stored := pubStored(t, srv.JS, "AUTH_EVENTS")
	require.Len(t, stored, 3)
	for i, s := range stored {
		assert.Equal(t, "auth.user.changed", s.Subject, "the topic is the subject, as given")
		_, got, err := m.DecodeNATS(s.Header, s.Data)
		require.NoError(t, err)
		assert.Equal(t, events[i].ID, got.ID)
		assert.Equal(t, events[i].Type, got.Type)
		assert.Equal(t, events[i].ID, s.Header.Get(marshaler.HeaderMsgID))
	}
	assert.Equal(t, "corr-meta", stored[0].Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "corr-ctx", stored[1].Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "cause-ctx", stored[1].Header.Get(marshaler.HeaderCausationID))
	assert.Empty(t, stored[2].Header.Get(marshaler.HeaderCorrelationID))

	// Publishing the same messages again: duplicates, stored once.
	require.NoError(t, mp.Publish("auth.user.changed", msgs...))
	assert.EqualValues(t, 3, pubCount(t, srv.JS, "AUTH_EVENTS"))
	assert.EqualValues(t, 3, mp.Publisher().Stats().Duplicates)

	require.NoError(t, mp.Close())
	assert.True(t, srv.Conn.IsConnected(), "the connection stays open")
	assert.ErrorIs(t, mp.Publish("auth.user.changed", msgs[0]), transport.ErrClosed)
}

func TestMessagePublisher_errors(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	mp := p.MessagePublisher()
	event, err := marshaler.Default().ToMessage(pubEvent(t, "user.created"))
	require.NoError(t, err)

	t.Run("wildcard topic", func(t *testing.T) {
		assert.ErrorIs(t, mp.Publish("auth.user.*", event), envelope.ErrInvalidSubject)
	})
	t.Run("not an event: nothing sent", func(t *testing.T) {
		plain := message.NewMessage("not-an-event", []byte(`{}`))
		err := mp.Publish("auth.user.created", event, plain)
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
		assert.ErrorIs(t, be.Errs[1], envelope.ErrInvalidEvent)
		assert.ErrorIs(t, be.Errs[1], marshaler.ErrNotAnEvent)
		assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))
	})
	t.Run("no stream", func(t *testing.T) {
		err := mp.Publish("nowhere.user.created", event)
		assert.ErrorIs(t, err, transport.ErrNoStream)
	})
	t.Run("close of a view leaves the publisher open", func(t *testing.T) {
		require.NoError(t, mp.Close())
		require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
		require.NoError(t, mp.Publish("auth.user.created", event))
		assert.EqualValues(t, 2, pubCount(t, srv.JS, "AUTH_EVENTS"))
	})
}
