package main

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// allowSchedules re-applies AUTH_EVENTS of scripts/streams.yaml with
// allow_msg_schedules on.
func allowSchedules(t *testing.T, apply func(jetstream.StreamSpec)) {
	t.Helper()
	specs, err := jetstream.LoadSpecs(specFile)
	require.NoError(t, err)
	for _, s := range specs.Streams {
		if s.Name == "AUTH_EVENTS" {
			s.AllowMsgSchedules = true
			apply(s)
		}
	}
}

func TestDLQReplay_in_replays_later_with_the_event_id(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	allowSchedules(t, func(s jetstream.StreamSpec) {
		_, err := jetstream.Apply(ctx, srv.JS, s)
		require.NoError(t, err)
	})
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	dseq := sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("db down"), nil)

	start := time.Now()
	out := mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1", "-in", "1s")
	assert.Contains(t, out, "scheduled replay of DLQ seq 1 -> auth.user.created at ")
	assert.Contains(t, out, "(schedule _schedule.auth.user.created."+e.ID+" in stream AUTH_EVENTS")
	assert.Contains(t, out, "deleted from DLQ")
	_, err := getMsg(t, srv, "DLQ", dseq)
	require.Error(t, err, "the dead letter is deleted once the schedule is stored")

	st, err := srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	var replayed []byte
	var storedAt time.Time
	var hdr map[string][]string
	require.Eventually(t, func() bool {
		m, err := st.GetLastMsgForSubject(ctx, "auth.user.created")
		if err != nil || m.Sequence == 1 {
			return false
		}
		replayed, storedAt, hdr = m.Data, m.Time, m.Header
		return true
	}, 15*time.Second, 20*time.Millisecond, "the replay fires")
	assert.False(t, storedAt.Before(start.Add(time.Second).Truncate(time.Second)), "not before its time: %s", storedAt)
	_, got, err := marshaler.Default().DecodeNATS(hdr, replayed)
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID, "the event keeps its id")
	assert.Equal(t, "_schedule.auth.user.created."+e.ID, hdr[transport.HeaderScheduler][0])
}

func TestDLQReplay_at_on_a_stream_without_schedules_keeps_the_dead_letter(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	dseq := sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("db down"), nil)

	_, _, err := runCmd(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1", "-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	require.Error(t, err)
	assert.ErrorIs(t, err, transport.ErrSchedulesDisabled)
	assert.Contains(t, err.Error(), "stream AUTH_EVENTS does not allow message schedules")
	assert.Contains(t, err.Error(), "allow_msg_schedules")
	_, err = getMsg(t, srv, "DLQ", dseq)
	require.NoError(t, err, "the dead letter is kept")

	for _, args := range [][]string{
		{"-seq", "1", "-at", "tomorrow"},
		{"-seq", "1", "-in", "soon"},
		{"-seq", "1", "-in", "-5m"},
		{"-seq", "1", "-in", "5m", "-at", "2030-01-01T00:00:00Z"},
	} {
		_, _, err := runCmd(t, ctx, append([]string{"dlq", "replay", "-server", srv.URL}, args...)...)
		assert.ErrorIs(t, err, errUsage, "%v", args)
	}
}

// A dead-lettered occurrence of a recurring schedule is replayed with the
// id it had (the consumer derived it from headers a publish cannot carry).
func TestDLQReplay_of_a_recurring_occurrence_keeps_the_occurrence_id(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	const next = "2024-01-16T00:00:00Z"
	sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("boom"), nats.Header{
		marshaler.HeaderScheduler:    {"_schedule.auth.user.created." + e.ID},
		marshaler.HeaderScheduleNext: {next},
	})
	mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1")
	replayed, err := getMsg(t, srv, "AUTH_EVENTS", 2)
	require.NoError(t, err)
	_, got, err := marshaler.Default().DecodeNATS(replayed.Header, replayed.Data)
	require.NoError(t, err)
	assert.Equal(t, marshaler.OccurrenceID(e.ID, next), got.ID)
	assert.Equal(t, e.Type, got.Type)
	assert.JSONEq(t, string(e.Data), string(got.Data))
}
