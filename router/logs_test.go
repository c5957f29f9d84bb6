package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// logLines captures a JSON slog logger's lines, safe for concurrent use.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// logger returns a router logger writing every level to l.
func (l *logLines) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns every line decoded.
func (l *logLines) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	raw := l.buf.String()
	l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(raw), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m), s)
		out = append(out, m)
	}
	return out
}

// find returns the lines whose msg is msg.
func (l *logLines) find(t *testing.T, msg string) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// atLevel returns the lines at level (DEBUG, INFO, WARN, ERROR).
func (l *logLines) atLevel(t *testing.T, level string) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) waitFor(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	require.Eventually(t, func() bool { return len(l.find(t, msg)) >= n }, 20*time.Second, 10*time.Millisecond,
		"waiting for %d %q lines", n, msg)
	return l.find(t, msg)
}

func TestLogs_one_line_per_failure_with_the_event_and_no_duplicate_error(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	cfg := fastConfig()
	cfg.MaxDeliver = 3
	cfg.Logger = middleware.NewSlogLogger(logs.logger())
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
		return errors.New("database unavailable")
	})
	start(t, r)

	ev := userEvent("user.created", nil)
	ctx := envelope.WithCorrelationID(ctxT(t), "corr-42")
	require.NoError(t, e.pub.Publish(ctx, "auth.user.created", ev))
	e.waitDeadLetters(t, 1)
	dead := logs.waitFor(t, "Event dead-lettered", 1)

	retries := logs.find(t, "Event handling failed, will be redelivered")
	require.Len(t, retries, 2, "one line per failed attempt before the last")
	for i, line := range append(retries, dead...) {
		assert.Equal(t, ev.ID, line["event_id"], "line %d", i)
		assert.Equal(t, "user.created", line["event_type"])
		assert.Equal(t, "auth.user.created", line["subject"])
		assert.Equal(t, float64(i+1), line["attempt"])
		assert.Equal(t, "corr-42", line["correlation_id"])
		assert.Equal(t, "users", line["group"])
		assert.Contains(t, line["error"], "database unavailable")
		assert.NotContains(t, line["error"], "goroutine ", "no stack trace for a plain error")
	}
	for _, line := range retries {
		assert.Equal(t, "WARN", line["level"])
	}
	assert.Equal(t, "ERROR", dead[0]["level"])
	assert.Equal(t, middleware.ReasonMaxDeliver, dead[0]["reason"])
	assert.Len(t, logs.atLevel(t, "ERROR"), 1, "the dead letter is the only ERROR line: %v", logs.atLevel(t, "ERROR"))
	assert.Len(t, logs.atLevel(t, "WARN"), 2, "the retries are the only WARN lines: %v", logs.atLevel(t, "WARN"))
	for _, line := range logs.lines(t) {
		if line["event_id"] == ev.ID && line["level"] == "DEBUG" {
			assert.Equal(t, "Event received", line["msg"], "per event lines at debug")
		}
	}
}

func TestLogs_stack_trace_only_for_a_panic(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	cfg := fastConfig()
	cfg.MaxDeliver = 1
	cfg.Logger = middleware.NewSlogLogger(logs.logger())
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
		panic("nil map write")
	})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	dead := logs.waitFor(t, "Event dead-lettered", 1)
	assert.Contains(t, dead[0]["error"], "nil map write")
	assert.Contains(t, dead[0]["error"], "goroutine ", "a recovered panic keeps its stack")
	assert.Len(t, logs.atLevel(t, "ERROR"), 1)
}

func TestLogs_skipped_events_are_debug_lines_that_say_why(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
	require.NoError(t, err)
	var got outcomes
	cfg := fastConfig()
	cfg.Idempotency = store
	cfg.Observe = got.observe
	cfg.Logger = middleware.NewSlogLogger(logs.logger())
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	start(t, r)

	ev, unknown := userEvent("user.created", nil), userEvent("user.deleted", nil)
	e.publish(t, "auth.user.created", ev)
	e.storeTwice(t, "auth.user.created", ev)
	e.publish(t, "auth.user.deleted", unknown)
	got.wait(t, 3)

	tests := []struct {
		name, msg, id string
		n             int
	}{
		{"handled", "Event handled", ev.ID, 1},
		{"duplicate", "Duplicate event skipped, acked", ev.ID, 1},
		{"unknown type", "Event of unknown type acked", unknown.ID, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := logs.waitFor(t, tt.msg, tt.n)
			require.Len(t, lines, tt.n)
			assert.Equal(t, "DEBUG", lines[0]["level"])
			assert.Equal(t, tt.id, lines[0]["event_id"])
		})
	}
	for _, line := range logs.find(t, "Event handled") {
		assert.NotEqual(t, unknown.ID, line["event_id"], "an unknown type is not 'handled'")
	}
	assert.Empty(t, logs.atLevel(t, "WARN"))
	assert.Empty(t, logs.atLevel(t, "ERROR"))
}

func TestLogs_stall_and_recovery_at_warn_and_an_ended_group_without_stack(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	cfg := fastConfig()
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.Logger = middleware.NewSlogLogger(logs.logger())
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var c calls
	r.Group("users", "auth.user.*").On("user.created", func(_ context.Context, ev *envelope.Event) error {
		c.add(ev.ID)
		return nil
	})
	stop := start(t, r)

	// The durable is deleted under the running group: it stalls, recreates
	// it and recovers.
	require.NoError(t, e.srv.JS.DeleteConsumer(ctxT(t), stream, "users"))
	logs.waitFor(t, "Consumer recovered, pulling again", 1)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	require.Eventually(t, func() bool { return c.n() == 1 }, 20*time.Second, 10*time.Millisecond)
	for _, msg := range []string{"Consumer stalled, recovering", "Consumer recovered, pulling again"} {
		lines := logs.find(t, msg)
		require.NotEmpty(t, lines, msg)
		assert.Equal(t, "WARN", lines[0]["level"], msg)
	}
	assert.Empty(t, logs.atLevel(t, "ERROR"), "a recovered stall is not an error")

	// The stream is deleted: the group cannot recover and the router stops.
	require.NoError(t, e.srv.JS.DeleteStream(ctxT(t), stream))
	ended := logs.waitFor(t, "Consumer ended", 1)
	assert.Equal(t, "ERROR", ended[0]["level"])
	assert.NotContains(t, ended[0]["error"], "goroutine ", "no stack trace when a subscription ends")
	assert.ErrorIs(t, stop(), router.ErrSubscriptionEnded)
	assert.Len(t, logs.atLevel(t, "ERROR"), 1, "%v", logs.atLevel(t, "ERROR"))
}

func TestLogs_a_durable_updated_to_the_groups_config_is_one_warn_line(t *testing.T) {
	e := newEnv(t)
	_, err := e.srv.JS.CreateConsumer(ctxT(t), stream, natsjs.ConsumerConfig{
		Durable: "users", FilterSubjects: []string{"auth.user.*"}, AckPolicy: natsjs.AckExplicitPolicy, AckWait: time.Minute,
	})
	require.NoError(t, err)
	var logs logLines
	cfg := fastConfig()
	cfg.Logger = middleware.NewSlogLogger(logs.logger())
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	start(t, r)

	var changed []map[string]any
	for _, line := range logs.lines(t) {
		if strings.Contains(line["msg"].(string), "Durable consumer") {
			changed = append(changed, line)
		}
	}
	require.Len(t, changed, 1, "%v", changed)
	assert.Equal(t, "WARN", changed[0]["level"])
	assert.Equal(t, "users", changed[0]["consumer"])
	assert.NotEmpty(t, changed[0]["changes"])
}
