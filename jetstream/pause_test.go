package jetstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

// A pause of 30 heartbeats and 7 pull expiries: the server answers the
// consumer's pulls with heartbeats and expires them as usual, so the
// consumer never reports a stall, keeps pulls waiting, and delivers nothing,
// neither the redelivery of a message nacked during the pause nor a new one,
// until the server resumes the durable by itself at the deadline.
func TestTransport_pause_longer_than_many_heartbeats_and_pull_expiries_is_no_stall(t *testing.T) {
	srv, _ := newTransportEnv(t, 1)
	const hb = 50 * time.Millisecond
	tr, err := jetstream.NewTransport(srv.Conn, jetstream.TransportConfig{Heartbeat: hb, PullExpiry: 4 * hb})
	require.NoError(t, err)
	var mu sync.Mutex
	var statuses []transport.Status
	rec := &sinkRecorder{}
	cons, err := tr.Consume(context.Background(), transport.ConsumerSpec{
		Stream: "T", Durable: "d", FilterSubjects: []string{"t.>"}, AckWait: time.Minute, MaxAckPending: 100,
		OnStatus: func(s transport.Status) { mu.Lock(); statuses = append(statuses, s); mu.Unlock() },
	}, rec.sink)
	require.NoError(t, err)
	t.Cleanup(cons.Stop)
	cons.Credit(1)
	require.Eventually(t, func() bool { return rec.len() == 1 }, 5*time.Second, 5*time.Millisecond)
	created, err := srv.JS.Consumer(pubCtx(t), "T", "d")
	require.NoError(t, err)

	until := time.Now().Add(30 * hb)
	require.NoError(t, tr.Pause(pubCtx(t), "T", "d", until))
	require.NoError(t, rec.ds[0].Settler.Nak(0), "a message held before the pause stays settleable")
	cons.Credit(2)
	_, err = srv.JS.Publish(pubCtx(t), "t.x", []byte("during"))
	require.NoError(t, err)

	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	looks := 0
	for time.Now().Before(until.Add(-hb)) {
		st, err := cons.State(pubCtx(t))
		require.NoError(t, err)
		if !time.Now().Before(until) {
			break
		}
		looks++
		require.Equal(t, 1, rec.len(), "nothing delivered while paused")
		require.True(t, until.Equal(st.PausedUntil), "paused until %s, state says %s", until, st.PausedUntil)
		<-poll.C
	}
	require.Greater(t, looks, 20)
	st, err := cons.State(pubCtx(t))
	require.NoError(t, err)
	assert.Positive(t, st.Waiting, "pulls still waiting at the server after 7 expiries")

	require.Eventually(t, func() bool { return rec.len() == 3 }, 10*time.Second, 5*time.Millisecond, "both delivered after the deadline")
	attempts := map[string]uint64{}
	for _, d := range rec.ds[1:] {
		attempts[string(d.Data)] = d.Attempt
		assert.False(t, d.Received.Before(until), "%q received %s before the deadline", d.Data, until.Sub(d.Received))
	}
	assert.Equal(t, map[string]uint64{string([]byte{0}): 2, "during": 1}, attempts, "the nacked one redelivered, the new one delivered")
	st, err = cons.State(pubCtx(t))
	require.NoError(t, err)
	assert.True(t, st.PausedUntil.IsZero(), "no longer paused")
	mu.Lock()
	assert.Empty(t, statuses, "no stall reported")
	mu.Unlock()
	after, err := srv.JS.Consumer(pubCtx(t), "T", "d")
	require.NoError(t, err)
	assert.Equal(t, created.CachedInfo().Created, after.CachedInfo().Created, "the durable was not recreated")
}

func TestTransport_pause_and_resume_errors(t *testing.T) {
	srv, tr := newTransportEnv(t, 0)
	_, err := srv.JS.CreateConsumer(pubCtx(t), "T", natsjs.ConsumerConfig{Durable: "d", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name            string
		stream, durable string
		until           time.Time
		want            error
	}{
		{"a durable that does not exist", "T", "nobody", hour, transport.ErrNoConsumer},
		{"a stream that does not exist", "NOPE", "d", hour, transport.ErrNoStream},
		{"a time already passed", "T", "d", time.Now().Add(-time.Second), envelope.ErrInvalidConfig},
		{"now", "T", "d", time.Now(), envelope.ErrInvalidConfig},
		{"an invalid durable name", "T", "a.b", hour, envelope.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Pause(pubCtx(t), tt.stream, tt.durable, tt.until)
			require.ErrorIs(t, err, tt.want)
			if tt.until == hour {
				assert.ErrorIs(t, tr.Resume(pubCtx(t), tt.stream, tt.durable), tt.want)
			}
		})
	}
	c, err := srv.JS.Consumer(pubCtx(t), "T", "d")
	require.NoError(t, err)
	assert.False(t, c.CachedInfo().Paused, "nothing refused paused it")

	t.Run("pause, pause again, resume", func(t *testing.T) {
		require.NoError(t, tr.Pause(pubCtx(t), "T", "d", hour))
		require.NoError(t, tr.Pause(pubCtx(t), "T", "d", hour.Add(time.Hour)))
		c, err := srv.JS.Consumer(pubCtx(t), "T", "d")
		require.NoError(t, err)
		require.True(t, c.CachedInfo().Paused)
		assert.True(t, hour.Add(time.Hour).Equal(*c.CachedInfo().Config.PauseUntil))
		require.NoError(t, tr.Resume(pubCtx(t), "T", "d"))
		require.NoError(t, tr.Resume(pubCtx(t), "T", "d"), "resuming what is not paused")
		c, err = srv.JS.Consumer(pubCtx(t), "T", "d")
		require.NoError(t, err)
		assert.False(t, c.CachedInfo().Paused)
	})
}
