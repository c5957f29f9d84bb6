package jetstream_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

// warnLogger is a pubLogger with the warn level.
type warnLogger struct{ pubLogger }

func (l *warnLogger) Warn(msg string, err error, fields watermill.LogFields) {
	l.log("warn", msg, err, fields)
}
func (l *warnLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// levels returns the levels of the entries whose message is msg.
func (l *warnLogger) levels(msg string) []string {
	var out []string
	for _, e := range l.find(msg) {
		out = append(out, e.level)
	}
	return out
}

func TestConnect_log_lines_name_the_server_and_a_normal_close_is_debug(t *testing.T) {
	srv := eventstest.NewServer(t)
	var logger warnLogger
	nc, err := jetstream.Connect(srv.URL, jetstream.WithName("auth-service"), jetstream.WithLogger(&logger),
		jetstream.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	require.Eventually(t, func() bool { return len(logger.find("nats connected")) == 1 }, pubWait, time.Millisecond)
	connected := logger.find("nats connected")[0]
	assert.Equal(t, "info", connected.level)
	assert.Equal(t, srv.URL, connected.fields["server"])
	assert.NotEmpty(t, connected.fields["server_name"])

	// The server goes away: one warn line naming it, then a reconnect.
	srv.Stop()
	require.Eventually(t, func() bool { return len(logger.find("nats disconnected")) == 1 }, pubWait, time.Millisecond)
	lost := logger.find("nats disconnected")[0]
	require.Error(t, lost.err)
	assert.Equal(t, "warn", lost.level)
	assert.Equal(t, srv.URL, lost.fields["server"], "the server that was lost is named")
	assert.Equal(t, "auth-service", lost.fields["name"])
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return len(logger.find("nats reconnected")) == 1 }, pubWait, time.Millisecond)
	back := logger.find("nats reconnected")[0]
	assert.Equal(t, "info", back.level)
	assert.Equal(t, srv.URL, back.fields["server"])

	// A normal close: debug lines that still name the server, nothing above.
	nc.Close()
	require.Eventually(t, func() bool { return len(logger.find("nats connection closed")) == 1 }, pubWait, time.Millisecond)
	assert.Equal(t, []string{"warn", "debug"}, logger.levels("nats disconnected"), "the lost server, then the close")
	assert.Equal(t, srv.URL, logger.find("nats disconnected")[1].fields["server"])
	assert.Equal(t, []string{"debug"}, logger.levels("nats connection closed"))
	logger.mu.Lock()
	entries := append([]pubLogEntry(nil), logger.entries...)
	logger.mu.Unlock()
	for _, e := range entries {
		assert.NotEqual(t, "error", e.level, "%s", e.msg)
	}
}

// lockedWriter collects a logger's output safely.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestConnect_default_logger_writes_disconnects_at_warn(t *testing.T) {
	var out lockedWriter
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	srv := eventstest.NewServer(t)
	nc, err := jetstream.Connect(srv.URL, jetstream.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	srv.Stop()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "nats disconnected") }, pubWait, time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "nats connected") }, pubWait, time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["msg"] == "nats disconnected" {
			assert.Equal(t, "WARN", m["level"])
			assert.Equal(t, srv.URL, m["server"])
			assert.NotEmpty(t, m["error"])
		}
	}
}
