package middleware_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// logLines runs one delivery through Logging over a JSON slog handler and
// returns the decoded lines.
func logLines(t *testing.T, msg *message.Message, h message.HandlerFunc) ([]map[string]any, error) {
	t.Helper()
	var buf bytes.Buffer
	l, err := middleware.NewLogging(middleware.LoggingConfig{
		Logger: middleware.NewSlogLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	})
	require.NoError(t, err)
	_, herr := l.Middleware(h)(msg)
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		lines = append(lines, m)
	}
	return lines, herr
}

func TestLogging_logs_each_outcome_at_its_level_with_event_fields(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		handler   message.HandlerFunc
		wantLevel string
		wantMsg   string
		wantExtra map[string]any
	}{
		{"handled", func(*message.Message) ([]*message.Message, error) { return nil, nil },
			"DEBUG", "Event handled", nil},
		{"retried", func(m *message.Message) ([]*message.Message, error) {
			transport.FromContext(m.Context()).Verdict = transport.Retry(2*time.Second, boom)
			return nil, boom
		}, "WARN", "Event handling failed, will be redelivered", map[string]any{"retry_in": "2s", "error": "boom"}},
		{"dead-lettered", func(m *message.Message) ([]*message.Message, error) {
			v := transport.DeadLetter(middleware.ReasonPermanent, errors.New("bad input"))
			v.DeadLetterSubject = "dlq.auth.user.created"
			transport.FromContext(m.Context()).Verdict = v
			return nil, nil
		}, "ERROR", "Event dead-lettered", map[string]any{"reason": "permanent", "dead_letter_subject": "dlq.auth.user.created", "error": "bad input"}},
		{"dead-letter failed", func(m *message.Message) ([]*message.Message, error) {
			err := errors.Join(boom, transport.ErrDeadLetter)
			transport.FromContext(m.Context()).Verdict = transport.Retry(time.Second, err)
			return nil, err
		}, "ERROR", "Event not dead-lettered, will be redelivered", map[string]any{"retry_in": "1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := delivered("ev-1", testSubject, 3, 2)
			msg.Metadata.Set(marshaler.MetadataCorrelationID, "corr-1")
			lines, _ := logLines(t, msg, tt.handler)
			require.Len(t, lines, 2)
			assert.Equal(t, "DEBUG", lines[0]["level"])
			assert.Equal(t, "Event received", lines[0]["msg"])
			last := lines[1]
			assert.Equal(t, tt.wantLevel, last["level"])
			assert.Equal(t, tt.wantMsg, last["msg"])
			for k, v := range map[string]any{"event_id": "ev-1", "event_type": "user.created", "subject": testSubject, "attempt": float64(2), "correlation_id": "corr-1",
				"group": testConsumer, "stream_seq": float64(3)} {
				assert.Equal(t, v, lines[0][k], "received: %s", k)
				assert.Equal(t, v, last[k], "outcome: %s", k)
			}
			for k, v := range tt.wantExtra {
				assert.Equal(t, v, last[k], k)
			}
		})
	}
}

func TestLogging_without_warn_level_logs_retries_at_info(t *testing.T) {
	capture := watermill.NewCaptureLogger()
	l, err := middleware.NewLogging(middleware.LoggingConfig{Logger: capture})
	require.NoError(t, err)
	_, err = l.Middleware(handlerReturning(new(int), errors.New("boom")))(delivered("ev-1", testSubject, 1, 1))
	require.Error(t, err, "the outcome is passed through")
	infos := capture.Captured()[watermill.InfoLogLevel]
	require.Len(t, infos, 1)
	assert.Equal(t, "boom", infos[0].Fields["error"])
}

// infoLogger logs at Info and above and says so (LevelLogger); a Debug call
// fails the test. It records the other lines.
type infoLogger struct {
	*watermill.CaptureLoggerAdapter
	t *testing.T
}

func (l infoLogger) Enabled(level slog.Level) bool { return level >= slog.LevelInfo }

func (l infoLogger) Debug(msg string, fields watermill.LogFields) {
	l.t.Errorf("Debug(%q) called on a logger at Info level", msg)
}

// TestLogging_at_info_level_builds_no_debug_fields: a logger that tells its
// level (LevelLogger) above debug gets no Debug call, and a handled event
// costs Logging no allocation (the fields of the received/handled lines are
// never built); the outcomes at Info and above are still logged.
func TestLogging_at_info_level_builds_no_debug_fields(t *testing.T) {
	logger := infoLogger{CaptureLoggerAdapter: watermill.NewCaptureLogger(), t: t}
	require.False(t, middleware.DebugEnabled(logger))
	l, err := middleware.NewLogging(middleware.LoggingConfig{Logger: logger})
	require.NoError(t, err)

	msg := delivered("ev-1", testSubject, 3, 1)
	handled := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	allocs := testing.AllocsPerRun(100, func() {
		_, err := handled(msg)
		assert.NoError(t, err)
	})
	assert.Zero(t, allocs, "allocations per handled event at Info level")
	assert.Empty(t, logger.Captured(), "nothing logged for a handled event")

	// The same middleware at debug level does build them: the count above
	// can fail.
	debug, err := middleware.NewLogging(middleware.LoggingConfig{Logger: debugLogger{watermill.NopLogger{}}})
	require.NoError(t, err)
	handledDebug := debug.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	assert.NotZero(t, testing.AllocsPerRun(100, func() { _, _ = handledDebug(msg) }), "debug fields are built at debug level")

	// Failures are still logged, with their fields.
	_, err = l.Middleware(handlerReturning(new(int), errors.New("boom")))(msg)
	require.Error(t, err)
	infos := logger.Captured()[watermill.InfoLogLevel]
	require.Len(t, infos, 1, "no WarnLogger: the retry is logged at info")
	assert.Equal(t, "ev-1", infos[0].Fields["event_id"])
	assert.Equal(t, "boom", infos[0].Fields["error"])
}

// debugLogger discards every line but says debug is on.
type debugLogger struct{ watermill.NopLogger }

func (debugLogger) Enabled(slog.Level) bool { return true }
