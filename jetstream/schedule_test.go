package jetstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// schedStream applies a stream on "auth.>" that allows schedules and TTL
// (the way a service declares it) and returns the server.
func schedStream(t *testing.T) *eventstest.Server {
	t.Helper()
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.StreamSpec{
		Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}, AllowMsgSchedules: true, AllowMsgTTL: true,
	})
	require.NoError(t, err)
	return srv
}

// waitStored waits until stream holds a message on subject after seq and
// returns the first one.
func waitStored(t *testing.T, js natsjs.JetStream, stream, subject string, after uint64) *natsjs.RawStreamMsg {
	t.Helper()
	var found *natsjs.RawStreamMsg
	require.Eventually(t, func() bool {
		for _, m := range pubStored(t, js, stream) {
			if m.Subject == subject && m.Sequence > after {
				found = m
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "nothing stored on %s after seq %d", subject, after)
	return found
}

// onSubject are the stored messages on subject.
func onSubject(t *testing.T, js natsjs.JetStream, stream, subject string) []*natsjs.RawStreamMsg {
	t.Helper()
	var out []*natsjs.RawStreamMsg
	for _, m := range pubStored(t, js, stream) {
		if m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func TestApply_schedules_add_the_schedule_subjects(t *testing.T) {
	srv := schedStream(t)
	st, err := srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	assert.Equal(t, []string{"auth.>", "_schedule.auth.>"}, cfg.Subjects)
	assert.True(t, cfg.AllowMsgSchedules)
	assert.True(t, cfg.AllowMsgTTL)

	ch, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.StreamSpec{
		Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}, AllowMsgSchedules: true, AllowMsgTTL: true,
	})
	require.NoError(t, err)
	assert.False(t, ch.Changed(), "applying the same spec again changes nothing: %s", ch)
}

func TestPublisher_at_delivers_the_event_at_its_time_with_its_id(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	e := pubEvent(t, "user.reminded")
	at := time.Now().Add(1200 * time.Millisecond)

	ack, err := p.PublishAck(pubCtx(t), "auth.user.reminded", e, transport.At(at))
	require.NoError(t, err)
	assert.Equal(t, "AUTH_EVENTS", ack.Stream)
	assert.Empty(t, onSubject(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded"), "nothing on the subject before its time")
	sched := onSubject(t, srv.JS, "AUTH_EVENTS", transport.ScheduleSubject("auth.user.reminded", e.ID))
	require.Len(t, sched, 1, "the schedule waits on its own subject")

	fired := waitStored(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded", 0)
	assert.False(t, fired.Time.Before(at.Truncate(time.Second)), "stored at %s, scheduled for %s", fired.Time, at)
	_, got, err := marshaler.Default().DecodeNATS(fired.Header, fired.Data)
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID, "the event keeps its id")
	assert.Equal(t, e.Type, got.Type)
	assert.JSONEq(t, string(e.Data), string(got.Data))
	assert.Equal(t, "purge", fired.Header.Get(transport.HeaderScheduleNext))
	require.Eventually(t, func() bool {
		return len(onSubject(t, srv.JS, "AUTH_EVENTS", transport.ScheduleSubject("auth.user.reminded", e.ID))) == 0
	}, pubWait, 10*time.Millisecond, "a one-shot schedule is removed as it fires")
}

func TestPublisher_after_and_async_schedules_fire_once_each(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	var ids []string
	for range 20 {
		e := pubEvent(t, "user.reminded")
		ids = append(ids, e.ID)
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.reminded", e, transport.After(time.Second)))
	}
	require.NoError(t, p.Flush(pubCtx(t)))
	var got []string
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, m := range onSubject(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded") {
			got = append(got, m.Header.Get(marshaler.HeaderID))
		}
		return len(got) >= len(ids)
	}, 15*time.Second, 20*time.Millisecond)
	assert.ElementsMatch(t, ids, got)
}

func TestPublisher_schedule_to_a_stream_without_schedules_names_the_stream_and_the_fix(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)

	err := p.Publish(pubCtx(t), "auth.user.reminded", pubEvent(t, "user.reminded"), transport.After(time.Minute))
	require.Error(t, err)
	assert.ErrorIs(t, err, transport.ErrSchedulesDisabled)
	assert.ErrorIs(t, err, transport.ErrPublish)
	assert.Contains(t, err.Error(), "stream AUTH_EVENTS")
	assert.Contains(t, err.Error(), "AllowMsgSchedules")
	assert.Contains(t, err.Error(), "allow_msg_schedules")
	assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))

	// Allowed on the server, but the stream lacks the _schedule subjects
	// (set up by hand): the same error, saying so.
	pubStreamConfig(t, srv.JS, natsjs.StreamConfig{Name: "BILLING", Subjects: []string{"billing.>"}, AllowMsgSchedules: true})
	err = p.Publish(pubCtx(t), "billing.invoice.due", pubEvent(t, "invoice.due"), transport.After(time.Minute))
	assert.ErrorIs(t, err, transport.ErrSchedulesDisabled)
	assert.ErrorIs(t, err, transport.ErrPublish)
	assert.NotErrorIs(t, err, transport.ErrNoStream, "the target has a stream")
	assert.Contains(t, err.Error(), "stream BILLING")

	// No stream at all for the target: ErrNoStream.
	err = p.Publish(pubCtx(t), "nowhere.invoice.due", pubEvent(t, "invoice.due"), transport.After(time.Minute))
	assert.ErrorIs(t, err, transport.ErrNoStream)
}

func TestPublisher_invalid_schedule_options_send_nothing(t *testing.T) {
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	tests := []struct {
		name string
		opts []jetstream.PublishOption
	}{
		{"two schedules", []jetstream.PublishOption{transport.After(time.Second), transport.At(time.Now())}},
		{"bad cron", []jetstream.PublishOption{transport.Cron("61 * * * * *")}},
		{"five cron fields", []jetstream.PublishOption{transport.Cron("* * * * *")}},
		{"every under a second", []jetstream.PublishOption{transport.Every(500 * time.Millisecond)}},
		{"time zone without cron", []jetstream.PublishOption{transport.After(time.Second), transport.InTimeZone("Europe/Paris")}},
		{"unknown time zone", []jetstream.PublishOption{transport.Cron("@daily"), transport.InTimeZone("Mars/Olympus")}},
		{"ttl under a second", []jetstream.PublishOption{transport.TTL(500 * time.Millisecond)}},
		{"negative delay", []jetstream.PublishOption{transport.After(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Publish(pubCtx(t), "auth.user.reminded", pubEvent(t, "user.reminded"), tt.opts...)
			assert.ErrorIs(t, err, transport.ErrInvalidOption)
			assert.NotErrorIs(t, err, transport.ErrPublish, "nothing was sent")
		})
	}
	assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))
	assert.Zero(t, p.Stats().Published)
}

func TestPublisher_cancelled_schedule_never_fires(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	cancelled, kept := pubEvent(t, "user.reminded"), pubEvent(t, "user.reminded")
	at := time.Now().Add(1500 * time.Millisecond)
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.reminded", cancelled, transport.At(at)))
	// Fires after the cancelled one would have: once it is stored, the
	// scheduler has passed the cancelled one's time.
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.reminded", kept, transport.At(at.Add(500*time.Millisecond))))

	require.NoError(t, p.CancelSchedule(pubCtx(t), "auth.user.reminded", cancelled.ID))
	err := p.CancelSchedule(pubCtx(t), "auth.user.reminded", cancelled.ID)
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound, "a second cancel finds nothing")

	fired := waitStored(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded", 0)
	assert.Equal(t, kept.ID, fired.Header.Get(marshaler.HeaderID))
	got := onSubject(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded")
	require.Len(t, got, 1, "the cancelled schedule did not fire")

	err = p.CancelSchedule(pubCtx(t), "auth.user.reminded", kept.ID)
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound, "a fired one-shot schedule is gone")
	err = p.CancelSchedule(pubCtx(t), "auth.user.reminded", "never-scheduled")
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound)
}

func TestPublisher_recurring_schedule_occurrences_are_events_of_their_own_until_cancelled(t *testing.T) {
	t.Parallel() // waits on the server's timers
	tests := []struct {
		name string
		opt  jetstream.PublishOption
	}{
		{"every", transport.Every(time.Second)},
		{"cron", transport.Cron("* * * * * *")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := schedStream(t)
			p := pubNew(t, srv.Conn)
			e := pubEvent(t, "report.due")
			require.NoError(t, p.Publish(pubCtx(t), "auth.report.due", e, tt.opt, transport.TTL(time.Hour)))

			var occ []*natsjs.RawStreamMsg
			require.Eventually(t, func() bool {
				occ = onSubject(t, srv.JS, "AUTH_EVENTS", "auth.report.due")
				return len(occ) >= 2
			}, 15*time.Second, 20*time.Millisecond)
			ids := map[string]bool{}
			for _, m := range occ[:2] {
				assert.Equal(t, "3600s", m.Header.Get(transport.HeaderTTL), "TTL applies to each occurrence")
				assert.Equal(t, e.ID, m.Header.Get(marshaler.HeaderID), "stored verbatim")
				_, got, err := marshaler.Default().DecodeNATS(m.Header, m.Data)
				require.NoError(t, err)
				assert.NotEqual(t, e.ID, got.ID, "an occurrence has an id of its own")
				assert.Equal(t, marshaler.OccurrenceID(e.ID, m.Header.Get(transport.HeaderScheduleNext)), got.ID)
				assert.Equal(t, e.Type, got.Type)
				ids[got.ID] = true
			}
			assert.Len(t, ids, 2, "two occurrences, two ids")

			require.NoError(t, p.CancelSchedule(pubCtx(t), "auth.report.due", e.ID))
			marker := pubEvent(t, "marker")
			require.NoError(t, p.Publish(pubCtx(t), "auth.marker", marker, transport.After(1500*time.Millisecond)))
			m := waitStored(t, srv.JS, "AUTH_EVENTS", "auth.marker", 0)
			for _, o := range onSubject(t, srv.JS, "AUTH_EVENTS", "auth.report.due") {
				assert.Less(t, o.Sequence, m.Sequence, "no occurrence after the cancel (seq %d stored after the marker)", o.Sequence)
			}
		})
	}
}

func TestPublisher_republished_schedule_replaces_the_pending_one(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	e := pubEvent(t, "user.reminded")
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.reminded", e, transport.After(time.Hour)))
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.reminded", e, transport.After(time.Second)))
	sched := onSubject(t, srv.JS, "AUTH_EVENTS", transport.ScheduleSubject("auth.user.reminded", e.ID))
	require.Len(t, sched, 1, "one schedule per subject and event id")

	waitStored(t, srv.JS, "AUTH_EVENTS", "auth.user.reminded", 0)
	// An immediate publish of the same event afterwards is not mistaken for
	// a duplicate of its schedule.
	ack, err := p.PublishAck(pubCtx(t), "auth.user.reminded", e)
	require.NoError(t, err)
	assert.False(t, ack.Duplicate)
}

func TestPublisher_ttl_event_is_gone_after_it_and_a_late_consumer_never_sees_it(t *testing.T) {
	t.Parallel() // waits on the server's timers
	srv := schedStream(t)
	ctx := pubCtx(t)
	cons, err := srv.JS.CreateOrUpdateConsumer(ctx, "AUTH_EVENTS", natsjs.ConsumerConfig{
		Durable: "late", FilterSubject: "auth.user.>", AckPolicy: natsjs.AckExplicitPolicy,
	})
	require.NoError(t, err)
	p := pubNew(t, srv.Conn)
	short, kept := pubEvent(t, "user.seen"), pubEvent(t, "user.seen")
	ack, err := p.PublishAck(ctx, "auth.user.seen", short, transport.TTL(2*time.Second))
	require.NoError(t, err)
	require.NoError(t, p.Publish(ctx, "auth.user.seen", kept))
	st, err := srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	m, err := st.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	assert.Equal(t, "2s", m.Header.Get(transport.HeaderTTL))

	require.Eventually(t, func() bool {
		_, err := st.GetMsg(ctx, ack.Sequence)
		return errors.Is(err, natsjs.ErrMsgNotFound)
	}, 10*time.Second, 50*time.Millisecond, "the event is removed after its TTL")
	assert.False(t, time.Since(m.Time) < 2*time.Second, "not before its TTL")

	batch, err := cons.Fetch(10, natsjs.FetchMaxWait(time.Second))
	require.NoError(t, err)
	var got []string
	for msg := range batch.Messages() {
		got = append(got, msg.Headers().Get(marshaler.HeaderID))
		require.NoError(t, msg.Ack())
	}
	require.NoError(t, batch.Error())
	assert.Equal(t, []string{kept.ID}, got, "the consumer started after the TTL sees only the kept event")
}

func TestPublisher_ttl_to_a_stream_without_ttl_names_the_stream_and_the_fix(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	err := p.Publish(pubCtx(t), "auth.user.seen", pubEvent(t, "user.seen"), transport.TTL(time.Minute))
	assert.ErrorIs(t, err, transport.ErrTTLDisabled)
	assert.Contains(t, err.Error(), "stream AUTH_EVENTS")
	assert.Contains(t, err.Error(), "allow_msg_ttl")

	var got []error
	pa := pubNew(t, srv.Conn, jetstream.PublisherConfig{OnAsyncError: func(ae jetstream.AsyncError) { got = append(got, ae.Err) }})
	e := pubEvent(t, "user.seen")
	require.NoError(t, pa.PublishAsync(pubCtx(t), "auth.user.seen", e, transport.TTL(time.Minute)))
	require.NoError(t, pa.Flush(pubCtx(t)))
	require.Len(t, got, 1)
	assert.ErrorIs(t, got[0], transport.ErrTTLDisabled, "async failures are typed too")
	assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))
}

func TestPublisher_expect_last_sequence_on_a_single_publish(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "ORDERS", "orders.>")
	p := pubNew(t, srv.Conn)
	ctx := pubCtx(t)
	ack, err := p.PublishAck(ctx, "orders.o1.created", pubEvent(t, "order.created"), transport.ExpectLastSequence("orders.o1.>", 0))
	require.NoError(t, err)
	_, err = p.PublishAck(ctx, "orders.o1.paid", pubEvent(t, "order.paid"), transport.ExpectLastSequence("orders.o1.>", ack.Sequence))
	require.NoError(t, err)

	err = p.Publish(ctx, "orders.o1.shipped", pubEvent(t, "order.shipped"), transport.ExpectLastSequence("orders.o1.>", ack.Sequence))
	var ce *jetstream.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, transport.ErrConflict)
	assert.Equal(t, "orders.o1.>", ce.Subject)
	assert.Equal(t, ack.Sequence, ce.Expected)
	assert.True(t, ce.CurrentKnown)
	assert.Equal(t, ack.Sequence+1, ce.Current)
	assert.Equal(t, uint64(2), pubCount(t, srv.JS, "ORDERS"))
}

func TestPublisher_cancel_schedule_errors(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	err := p.CancelSchedule(pubCtx(t), "auth.user.reminded", "id-1")
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound, "a stream without schedules has none")
	assert.ErrorIs(t, p.CancelSchedule(pubCtx(t), "auth.*", "id-1"), envelope.ErrInvalidSubject)
	require.NoError(t, p.Close())
	assert.ErrorIs(t, p.CancelSchedule(context.Background(), "auth.user.reminded", "id-1"), transport.ErrClosed)
}

// The schedule subject of an event id that is not a plain subject token is
// a hash of it, the same each time.
func TestScheduleSubject_of_any_event_id(t *testing.T) {
	assert.Equal(t, "_schedule.auth.user.x.550e8400-e29b-41d4-a716-446655440000",
		transport.ScheduleSubject("auth.user.x", "550e8400-e29b-41d4-a716-446655440000"))
	odd := transport.ScheduleSubject("auth.user.x", "order 12.3/4")
	assert.Equal(t, odd, transport.ScheduleSubject("auth.user.x", "order 12.3/4"))
	assert.NoError(t, envelope.ValidateSubject(odd))
	assert.NotEqual(t, odd, transport.ScheduleSubject("auth.user.x", "order 12.3/5"))
}
