package jetstream_test

import (
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

func pubConsumerSpec() jetstream.ConsumerSpec {
	return jetstream.ConsumerSpec{
		Stream: "AUTH_EVENTS", Durable: "auth-user-processor", FilterSubjects: []string{"auth.user.*"},
		AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000,
	}
}

func TestApply_twice_reports_unchanged(t *testing.T) {
	srv := eventstest.NewServer(t)
	specs := []jetstream.Spec{pubConsumerSpec(), jetstream.AuthEventsStream(), jetstream.DeadLetterStream()}

	first, err := jetstream.Apply(pubCtx(t), srv.JS, specs...)
	require.NoError(t, err)
	assert.Equal(t, jetstream.Changes{
		{Kind: "stream", Name: "AUTH_EVENTS", Action: jetstream.Created},
		{Kind: "stream", Name: "DLQ", Action: jetstream.Created},
		{Kind: "consumer", Name: "AUTH_EVENTS/auth-user-processor", Action: jetstream.Created},
	}, first, "streams first, whatever the order given")
	assert.True(t, first.Changed())

	second, err := jetstream.Apply(pubCtx(t), srv.JS, specs...)
	require.NoError(t, err)
	for _, c := range second {
		assert.Equal(t, jetstream.Unchanged, c.Action, c.String())
		assert.Empty(t, c.Fields)
	}
	assert.False(t, second.Changed())

	// What was created is what the specs say.
	s, err := srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	assert.Equal(t, []string{"auth.>"}, cfg.Subjects)
	assert.Equal(t, 30*24*time.Hour, cfg.MaxAge)
	assert.Equal(t, 2*time.Minute, cfg.Duplicates)
	assert.Equal(t, natsjs.FileStorage, cfg.Storage)
	c, err := srv.JS.Consumer(pubCtx(t), "AUTH_EVENTS", "auth-user-processor")
	require.NoError(t, err)
	ccfg := c.CachedInfo().Config
	assert.Equal(t, natsjs.AckExplicitPolicy, ccfg.AckPolicy)
	assert.Equal(t, 5, ccfg.MaxDeliver)
	assert.Equal(t, "auth.user.*", ccfg.FilterSubject)

	// Zero fields stand for the server's defaults: still unchanged.
	zero, err := jetstream.Apply(pubCtx(t), srv.JS,
		jetstream.StreamSpec{Name: "MINIMAL", Subjects: []string{"minimal.>"}},
		jetstream.ConsumerSpec{Stream: "MINIMAL", Durable: "min"})
	require.NoError(t, err)
	assert.True(t, zero.Changed())
	zero, err = jetstream.Apply(pubCtx(t), srv.JS,
		&jetstream.StreamSpec{Name: "MINIMAL", Subjects: []string{"minimal.>"}},
		&jetstream.ConsumerSpec{Stream: "MINIMAL", Durable: "min"})
	require.NoError(t, err)
	assert.False(t, zero.Changed(), zero.String())
}

func TestApply_change_reports_updated_fields(t *testing.T) {
	srv := eventstest.NewServer(t)
	stream, consumer := jetstream.AuthEventsStream(), pubConsumerSpec()
	_, err := jetstream.Apply(pubCtx(t), srv.JS, stream, consumer)
	require.NoError(t, err)

	stream.MaxAge = 7 * 24 * time.Hour
	stream.Subjects = []string{"auth.>", "login.>"}
	consumer.AckWait = 0 // BackOff[0] takes its place
	consumer.MaxDeliver = 3
	consumer.BackOff = []time.Duration{time.Second, 5 * time.Second}
	got, err := jetstream.Apply(pubCtx(t), srv.JS, stream, consumer)
	require.NoError(t, err)
	assert.Equal(t, jetstream.Changes{
		{Kind: "stream", Name: "AUTH_EVENTS", Action: jetstream.Updated, Fields: []jetstream.FieldChange{
			{Field: "subjects", From: "[auth.>]", To: "[auth.> login.>]"},
			{Field: "max_age", From: "720h0m0s", To: "168h0m0s"},
		}},
		{Kind: "consumer", Name: "AUTH_EVENTS/auth-user-processor", Action: jetstream.Updated, Fields: []jetstream.FieldChange{
			{Field: "ack_wait", From: "30s", To: "1s"},
			{Field: "max_deliver", From: "5", To: "3"},
			{Field: "backoff", From: "[]", To: "[1s 5s]"},
		}},
	}, got)
	assert.Equal(t, "stream AUTH_EVENTS: updated (subjects: [auth.>] -> [auth.> login.>], max_age: 720h0m0s -> 168h0m0s)", got[0].String())

	s, err := srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, 7*24*time.Hour, s.CachedInfo().Config.MaxAge)
	c, err := srv.JS.Consumer(pubCtx(t), "AUTH_EVENTS", "auth-user-processor")
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Second, 5 * time.Second}, c.CachedInfo().Config.BackOff)

	again, err := jetstream.Apply(pubCtx(t), srv.JS, stream, consumer)
	require.NoError(t, err)
	assert.False(t, again.Changed(), again.String())
}

func TestApply_keeps_settings_it_does_not_declare(t *testing.T) {
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	s, err := srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = 1000 // set by an operator with another tool
	_, err = srv.JS.UpdateStream(pubCtx(t), cfg)
	require.NoError(t, err)

	spec := jetstream.AuthEventsStream()
	spec.Description = "changed"
	got, err := jetstream.Apply(pubCtx(t), srv.JS, spec)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, jetstream.Updated, got[0].Action)
	s, err = srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, int64(1000), s.CachedInfo().Config.MaxMsgs)
	assert.Equal(t, "changed", s.CachedInfo().Config.Description)
}

func TestApply_errors(t *testing.T) {
	srv := eventstest.NewServer(t)

	t.Run("validates everything before sending anything", func(t *testing.T) {
		bad := jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d", MaxDeliver: 1, BackOff: []time.Duration{time.Second, time.Second}}
		got, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.AuthEventsStream(), bad)
		assert.ErrorIs(t, err, jetstream.ErrBackOffTooLong)
		assert.Empty(t, got)
		_, err = srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
		assert.ErrorIs(t, err, natsjs.ErrStreamNotFound, "nothing created")
	})
	t.Run("same stream twice", func(t *testing.T) {
		_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.AuthEventsStream(), jetstream.AuthEventsStream())
		assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
	})
	t.Run("nil spec", func(t *testing.T) {
		_, err := jetstream.Apply(pubCtx(t), srv.JS, (*jetstream.StreamSpec)(nil))
		assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
	})
	t.Run("consumer on a missing stream", func(t *testing.T) {
		_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.ConsumerSpec{Stream: "NOPE", Durable: "d"})
		assert.ErrorIs(t, err, jetstream.ErrApply)
		assert.ErrorIs(t, err, natsjs.ErrStreamNotFound)
	})
	t.Run("immutable setting: reported with what was done so far", func(t *testing.T) {
		_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.StreamSpec{Name: "MEM", Subjects: []string{"mem.>"}})
		require.NoError(t, err)
		changed := jetstream.StreamSpec{Name: "MEM", Subjects: []string{"mem.>"}, Storage: natsjs.MemoryStorage}
		got, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.DeadLetterStream(), changed)
		assert.ErrorIs(t, err, jetstream.ErrApply)
		assert.Contains(t, err.Error(), "storage")
		require.Len(t, got, 1)
		assert.Equal(t, "DLQ", got[0].Name)
	})
	t.Run("nil JetStream", func(t *testing.T) {
		_, err := jetstream.Apply(pubCtx(t), nil, jetstream.AuthEventsStream())
		assert.ErrorIs(t, err, jetstream.ErrInvalidConfig)
	})
}

func TestApply_streams_receive_published_events(t *testing.T) {
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	p := pubNew(t, srv.Conn)
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
	require.NoError(t, p.Publish(pubCtx(t), "dlq.auth.user.created", pubEvent(t, "user.created")))
	assert.EqualValues(t, 1, pubCount(t, srv.JS, "AUTH_EVENTS"))
	assert.EqualValues(t, 1, pubCount(t, srv.JS, "DLQ"))
}
