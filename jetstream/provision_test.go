package jetstream_test

import (
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
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
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
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

// TestApply_production_stream_settings: discard policy, per-subject limits,
// message TTLs, compression, sources and placement are created as declared,
// compare unchanged on the next Apply and are updated field by field.
func TestApply_production_stream_settings(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := pubCtx(t)
	origin := jetstream.StreamSpec{Name: "ORIGIN", Subjects: []string{"origin.>"}}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	agg := jetstream.StreamSpec{
		Name: "AGG", Subjects: []string{"agg.>"},
		MaxMsgsPerSubject: 2, Discard: natsjs.DiscardNew, DiscardNewPerSubject: true,
		AllowMsgTTL: true, Compression: natsjs.S2Compression,
		Sources:   []jetstream.StreamSourceSpec{{Name: "ORIGIN", FilterSubject: "origin.user.>", StartTime: start}},
		Placement: &jetstream.PlacementSpec{Tags: []string{"ssd"}},
	}
	got, err := jetstream.Apply(ctx, srv.JS, origin, agg)
	require.NoError(t, err)
	assert.Equal(t, jetstream.Created, got[1].Action)

	s, err := srv.JS.Stream(ctx, "AGG")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	assert.Equal(t, int64(2), cfg.MaxMsgsPerSubject)
	assert.Equal(t, natsjs.DiscardNew, cfg.Discard)
	assert.True(t, cfg.DiscardNewPerSubject)
	assert.True(t, cfg.AllowMsgTTL)
	assert.Equal(t, natsjs.S2Compression, cfg.Compression)
	require.Len(t, cfg.Sources, 1)
	assert.Equal(t, "ORIGIN", cfg.Sources[0].Name)
	assert.Equal(t, "origin.user.>", cfg.Sources[0].FilterSubject)
	require.NotNil(t, cfg.Sources[0].OptStartTime)
	assert.True(t, start.Equal(*cfg.Sources[0].OptStartTime))
	require.NotNil(t, cfg.Placement)
	assert.Equal(t, []string{"ssd"}, cfg.Placement.Tags)

	again, err := jetstream.Apply(ctx, srv.JS, origin, agg)
	require.NoError(t, err)
	assert.False(t, again.Changed(), again.String())

	// The per-subject discard policy is live: a third message on one
	// subject is refused.
	for i := range 2 {
		_, err := srv.JS.Publish(ctx, "agg.x", []byte{byte('0' + i)})
		require.NoError(t, err)
	}
	_, err = srv.JS.Publish(ctx, "agg.x", []byte("3"))
	require.Error(t, err)

	agg.Discard, agg.DiscardNewPerSubject, agg.MaxMsgsPerSubject = natsjs.DiscardOld, false, 0
	agg.Compression = natsjs.NoCompression
	agg.Sources = append(agg.Sources, jetstream.StreamSourceSpec{Name: "ORIGIN", FilterSubject: "origin.billing.>"})
	got, err = jetstream.Apply(ctx, srv.JS, agg)
	require.NoError(t, err)
	assert.Equal(t, []jetstream.FieldChange{
		{Field: "max_msgs_per_subject", From: "2", To: "unlimited"},
		{Field: "discard", From: "new", To: "old"},
		{Field: "discard_new_per_subject", From: "true", To: "false"},
		{Field: "compression", From: "s2", To: "none"},
		{Field: "sources", From: "[(ORIGIN filter=origin.user.> start_time=2024-01-01T00:00:00Z)]",
			To: "[(ORIGIN filter=origin.billing.>) (ORIGIN filter=origin.user.> start_time=2024-01-01T00:00:00Z)]"},
	}, got[0].Fields)
	again, err = jetstream.Apply(ctx, srv.JS, agg)
	require.NoError(t, err)
	assert.False(t, again.Changed(), again.String())
}

// TestApply_mirror_copies_its_origin: a mirror has no subjects, receives
// what its origin stores, and cannot be pointed at another stream (the
// error says the setting is fixed and what to do).
func TestApply_mirror_copies_its_origin(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := pubCtx(t)
	mirror := jetstream.StreamSpec{Name: "AUTH_COPY", Mirror: &jetstream.StreamSourceSpec{Name: "AUTH_EVENTS"}}
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.AuthEventsStream(), mirror)
	require.NoError(t, err)
	_, err = srv.JS.Publish(ctx, "auth.user.created", []byte("{}"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pubCount(t, srv.JS, "AUTH_COPY") == 1 }, pubWait, 10*time.Millisecond)

	again, err := jetstream.Apply(ctx, srv.JS, mirror)
	require.NoError(t, err)
	assert.False(t, again.Changed(), again.String())

	other := jetstream.StreamSpec{Name: "AUTH_COPY", Mirror: &jetstream.StreamSourceSpec{Name: "DLQ"}}
	_, err = jetstream.Apply(ctx, srv.JS, jetstream.DeadLetterStream(), other)
	require.ErrorIs(t, err, jetstream.ErrApply)
	assert.Contains(t, err.Error(), "cannot update stream AUTH_COPY (mirror): stream mirror configuration can not be updated; this setting is fixed once the stream exists")
}

// TestApply_consumer_start_positions: a projection created from a time or a
// sequence, or for new events only, does not replay the stream.
func TestApply_consumer_start_positions(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := pubCtx(t)
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	for range 3 {
		_, err := srv.JS.Publish(ctx, "auth.user.created", []byte("{}"))
		require.NoError(t, err)
	}
	st, err := srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	third, err := st.GetMsg(ctx, 3)
	require.NoError(t, err)

	tests := []struct {
		name        string
		spec        jetstream.ConsumerSpec
		wantPending uint64
	}{
		{"everything (default)", jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "all"}, 3},
		{"new events only", jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "new", DeliverPolicy: natsjs.DeliverNewPolicy}, 0},
		{"from a sequence", jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "seq", StartSequence: 2}, 2},
		{"from a time", jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "time", StartTime: third.Time}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jetstream.Apply(ctx, srv.JS, tt.spec)
			require.NoError(t, err)
			assert.Equal(t, jetstream.Created, got[0].Action)
			c, err := srv.JS.Consumer(ctx, "AUTH_EVENTS", tt.spec.Durable)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPending, c.CachedInfo().NumPending)
			again, err := jetstream.Apply(ctx, srv.JS, tt.spec)
			require.NoError(t, err)
			assert.False(t, again.Changed(), again.String())
		})
	}
	t.Run("the start cannot move once created", func(t *testing.T) {
		moved := jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "seq", StartSequence: 3}
		got, err := jetstream.Apply(ctx, srv.JS, moved)
		require.ErrorIs(t, err, jetstream.ErrApply, "%v", got)
		assert.Contains(t, err.Error(), "cannot update consumer AUTH_EVENTS/seq (start_sequence)")
	})
}

// TestApply_overlapping_subjects_name_the_other_stream: the server says only
// "subjects overlap with an existing stream"; Apply says which.
func TestApply_overlapping_subjects_name_the_other_stream(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := pubCtx(t)
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	users := jetstream.StreamSpec{Name: "USERS", Subjects: []string{"auth.user.>"}}
	_, err = jetstream.Apply(ctx, srv.JS, users)
	require.ErrorIs(t, err, transport.ErrSubjectsOverlap)
	require.ErrorIs(t, err, jetstream.ErrApply)
	assert.Equal(t, "cannot create stream USERS: its subjects overlap with stream AUTH_EVENTS (auth.user.> overlaps auth.>), and a message can be stored by one stream only: narrow the subjects of one of them, or make one source the other", err.Error())

	// An update that would overlap names it too.
	_, err = jetstream.Apply(ctx, srv.JS, jetstream.StreamSpec{Name: "BILLING", Subjects: []string{"billing.>"}})
	require.NoError(t, err)
	_, err = jetstream.Apply(ctx, srv.JS, jetstream.StreamSpec{Name: "BILLING", Subjects: []string{"billing.>", "auth.*.created"}})
	require.ErrorIs(t, err, transport.ErrSubjectsOverlap)
	assert.Contains(t, err.Error(), "cannot update stream BILLING: its subjects overlap with stream AUTH_EVENTS (auth.*.created overlaps auth.>)")
}

func TestSubjectsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"auth.>", "auth.user.created", true},
		{"auth.>", "auth.user.*", true},
		{"auth.user.*", "auth.user.created", true},
		{"auth.user.*", "auth.user.role.updated", false},
		{"auth.user.>", "auth.user", false},
		{"auth.>", "billing.>", false},
		{"*.user.*", "auth.*.created", true},
		{">", "anything.at.all", true},
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			assert.Equal(t, tt.want, jetstream.SubjectsOverlap(tt.a, tt.b))
			assert.Equal(t, tt.want, jetstream.SubjectsOverlap(tt.b, tt.a), "symmetric")
		})
	}
}
