package jetstream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

func TestListSchedules_pages_the_pending_schedules_and_CancelScheduleAt_removes_one(t *testing.T) {
	srv := schedStream(t)
	p := pubNew(t, srv.Conn)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var ids []string
	for range 3 {
		e := pubEvent(t, "user.reminded")
		ids = append(ids, e.ID)
		require.NoError(t, p.Publish(pubCtx(t), "auth.user.reminded", e, transport.At(at)))
	}
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.reported", pubEvent(t, "user.reported"), transport.Cron("0 0 9 * * *")))
	// An ordinary event between them is not a schedule.
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))

	page, err := jetstream.ListSchedules(pubCtx(t), srv.JS, "AUTH_EVENTS", 0, 2)
	require.NoError(t, err)
	require.Len(t, page.Schedules, 2)
	first := page.Schedules[0]
	assert.Equal(t, "AUTH_EVENTS", first.Stream)
	assert.Equal(t, "auth.user.reminded", first.Target)
	assert.Equal(t, ids[0], first.EventID)
	assert.Equal(t, "user.reminded", first.Type)
	assert.True(t, at.Equal(first.At), "%s != %s", first.At, at)
	require.NotZero(t, page.Next)

	rest, err := jetstream.ListSchedules(pubCtx(t), srv.JS, "AUTH_EVENTS", page.Next, 10)
	require.NoError(t, err)
	require.Len(t, rest.Schedules, 2)
	assert.Equal(t, "0 0 9 * * *", rest.Schedules[1].Schedule)
	assert.True(t, rest.Schedules[1].At.IsZero())
	assert.Zero(t, rest.Next)

	require.NoError(t, jetstream.CancelScheduleAt(pubCtx(t), srv.JS, "AUTH_EVENTS", first.Seq))
	err = jetstream.CancelScheduleAt(pubCtx(t), srv.JS, "AUTH_EVENTS", first.Seq)
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound)
	err = p.CancelSchedule(pubCtx(t), "auth.user.reminded", ids[0])
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound, "the publisher's cancel agrees it is gone")
	all, err := jetstream.ListSchedules(pubCtx(t), srv.JS, "AUTH_EVENTS", 0, 10)
	require.NoError(t, err)
	assert.Len(t, all.Schedules, 3)

	// The ordinary event's sequence is not a schedule.
	err = jetstream.CancelScheduleAt(pubCtx(t), srv.JS, "AUTH_EVENTS", 5)
	assert.ErrorIs(t, err, transport.ErrScheduleNotFound)
	_, err = jetstream.ListSchedules(pubCtx(t), srv.JS, "AUTH_EVENTS", 0, 0)
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}
