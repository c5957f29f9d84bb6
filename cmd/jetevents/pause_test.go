package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// consumerRow is the table row of one consumer of `jetevents consumers`,
// split in fields.
func consumerRow(t *testing.T, out, stream, name string) []string {
	t.Helper()
	for _, l := range lines(out) {
		if f := strings.Fields(l); len(f) > 1 && f[0] == stream && f[1] == name {
			return f
		}
	}
	t.Fatalf("no row for %s/%s in:\n%s", stream, name, out)
	return nil
}

// The proof from the operator's side: `consumers pause` pauses the
// durable a running router group consumes; `jetevents consumers` shows it
// paused until the deadline (table, note, -json, detail), the router's
// Health says ready and paused, nothing reaches the handler; `consumers
// resume` resumes it at once.
func TestConsumers_pause_and_resume_a_group(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	var handled atomic.Int32
	r, err := router.New(srv.Conn, router.Config{Stream: "AUTH_EVENTS", Logger: middleware.NewSlogLogger(nil)})
	require.NoError(t, err)
	r.Group("user-notifications", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		handled.Add(1)
		return nil
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	<-r.Running()

	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	out := mustRun(t, ctx, "consumers", "pause", "user-notifications", "-until", until.Format(time.RFC3339), "-server", srv.URL)
	assert.Equal(t, "paused AUTH_EVENTS/user-notifications until "+until.Format(time.RFC3339)+
		" (for 2h0m0s): nothing is delivered to it until then, when it resumes by itself; 'jetevents consumers resume user-notifications -stream AUTH_EVENTS' resumes it now\n", out)

	publishEvent(t, srv, "auth.user.created", "user.created")
	h := r.Health(ctx)
	assert.True(t, h.Ready, "a paused group is ready")
	require.Len(t, h.Groups, 1)
	assert.Equal(t, until, h.Groups[0].PausedUntil.UTC())
	assert.EqualValues(t, 1, h.Groups[0].Pending)
	assert.Zero(t, handled.Load())

	out = mustRun(t, ctx, "consumers", "-server", srv.URL)
	// STREAM CONSUMER FILTER PENDING ACK-PENDING REDELIVERED WAITING LAST-ACTIVE STALLED MAX-DELIVER PAUSED-UNTIL
	row := consumerRow(t, out, "AUTH_EVENTS", "user-notifications")
	assert.Equal(t, []string{"1", "0"}, row[3:5], "one event waits, none delivered")
	assert.Equal(t, "no", row[len(row)-3], "paused is not stalled")
	assert.Equal(t, until.Format(time.RFC3339), row[len(row)-1])
	assert.Contains(t, out, "paused: AUTH_EVENTS/user-notifications until "+until.Format(time.RFC3339)+": nothing is delivered to it until then, when it resumes by itself")

	var js map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-json", "-server", srv.URL)), &js))
	assert.Equal(t, until.Format(time.RFC3339), js["paused_until"])
	assert.Equal(t, true, js["paused"])
	assert.Equal(t, false, js["stalled"])
	out = mustRun(t, ctx, "consumers", "AUTH_EVENTS", "user-notifications", "-server", srv.URL)
	assert.Regexp(t, `paused:\s+yes, until `+until.Format(time.RFC3339)+` \(for (1h59m|2h0m)0s more\), then it resumes by itself`, out)

	out = mustRun(t, ctx, "consumers", "resume", "user-notifications", "-server", srv.URL)
	assert.Equal(t, "resumed AUTH_EVENTS/user-notifications: it delivers again\n", out)
	require.Eventually(t, func() bool { return handled.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.True(t, r.Health(ctx).Groups[0].PausedUntil.IsZero())
	row = consumerRow(t, mustRun(t, ctx, "consumers", "-server", srv.URL), "AUTH_EVENTS", "user-notifications")
	assert.Equal(t, "-", row[len(row)-1])
	out = mustRun(t, ctx, "consumers", "resume", "user-notifications", "-stream", "AUTH_EVENTS", "-server", srv.URL)
	assert.Equal(t, "AUTH_EVENTS/user-notifications was not paused: nothing changed\n", out)
}

// -for pauses from now; at the deadline the server resumes the durable by
// itself, and the list says so.
func TestConsumers_pause_for_a_duration_ends_by_itself(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	start := time.Now()
	out := mustRun(t, ctx, "consumers", "pause", "user-notifications", "-for", "1s", "-stream", "AUTH_EVENTS", "-server", srv.URL)
	assert.Contains(t, out, "paused AUTH_EVENTS/user-notifications until ")
	c, err := srv.JS.Consumer(ctx, "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)
	ci := c.CachedInfo()
	require.True(t, ci.Paused)
	assert.WithinDuration(t, start.Add(time.Second), *ci.Config.PauseUntil, time.Second)
	require.Eventually(t, func() bool {
		row := consumerRow(t, mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-server", srv.URL), "AUTH_EVENTS", "user-notifications")
		return row[len(row)-1] == "-"
	}, 10*time.Second, 50*time.Millisecond, "no longer paused after the deadline, without a resume")
}

func TestConsumers_pause_refusals(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	// A second stream with a consumer of the same name.
	_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
	require.NoError(t, err)
	_, err = srv.JS.CreateConsumer(ctx, "OTHER", natsjs.ConsumerConfig{Durable: "twin", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = srv.JS.CreateConsumer(ctx, "AUTH_EVENTS", natsjs.ConsumerConfig{Durable: "twin", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
		want error
		msg  string
	}{
		{"no group", []string{"pause", "-for", "1h"}, errUsage, "name the group"},
		{"no time", []string{"pause", "user-notifications"}, errUsage, "say until when: -until TIME or -for DURATION"},
		{"both times", []string{"pause", "user-notifications", "-for", "1h", "-until", "2099-01-01T00:00:00Z"}, errUsage, "-until and -for exclude each other"},
		{"a time passed", []string{"pause", "user-notifications", "-until", past}, errUsage, "has passed"},
		{"a bad time", []string{"pause", "user-notifications", "-until", "tomorrow"}, errUsage, "want an RFC 3339 time"},
		{"a bad duration", []string{"pause", "user-notifications", "-for", "-5m"}, errUsage, "want a positive duration"},
		{"an unknown group", []string{"pause", "nobody", "-for", "1h"}, errNotFound, "no stream has a consumer nobody"},
		{"an unknown group on a stream", []string{"resume", "nobody", "-stream", "AUTH_EVENTS"}, errNotFound, "stream AUTH_EVENTS has no consumer nobody (it has twin, user-notifications)"},
		{"an unknown stream", []string{"pause", "user-notifications", "-stream", "NOPE", "-for", "1h"}, errNotFound, "stream NOPE does not exist"},
		{"a name on two streams", []string{"pause", "twin", "-for", "1h"}, errUsage, "streams AUTH_EVENTS, OTHER each have a consumer twin: pick one with -stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, append(append([]string{"consumers"}, tt.args...), "-server", srv.URL)...)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "consumers "+tt.args[0]+": "), err.Error())
		})
	}
	for _, name := range []string{"user-notifications", "twin"} {
		c, err := srv.JS.Consumer(ctx, "AUTH_EVENTS", name)
		require.NoError(t, err)
		assert.False(t, c.CachedInfo().Paused, "nothing refused paused %s", name)
	}
	out := mustRun(t, ctx, "consumers", "pause", "twin", "-stream", "OTHER", "-for", "1h", "-server", srv.URL)
	assert.Contains(t, out, "paused OTHER/twin until ")
}
