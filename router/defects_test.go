package router_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// Each test here proves a defect of the first release fixed.

func TestRouter_invalid_stream_or_durable_names_are_refused_at_once_as_config_errors(t *testing.T) {
	nc := newEnv(t).srv.Conn
	_, err := router.New(nc, router.Config{Stream: "AUTH.EVENTS"})
	require.ErrorIs(t, err, envelope.ErrInvalidConfig, "New refuses a stream name with a dot")

	r, err := router.New(nc, router.Config{Stream: stream})
	require.NoError(t, err)
	for _, durable := range []string{"a.b", "a b", "a*", "a>"} {
		g := r.Group(durable, "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })
		assert.ErrorIs(t, g.Err(), envelope.ErrInvalidConfig, "durable %q refused before Run", durable)
	}
	g := r.Group("ok", "auth..user").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	assert.ErrorIs(t, g.Err(), envelope.ErrInvalidConfig, "an invalid filter is refused before Run")
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRouter_default_logger_writes_retries_at_warn(t *testing.T) {
	var out syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	e := newEnv(t)
	cfg := fastConfig()
	cfg.Logger = nil // the default
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	failed := make(chan struct{}, 8)
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		failed <- struct{}{}
		return errors.New("transient")
	})
	start(t, r)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	<-failed
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "level=WARN msg=\"Event handling failed") }, 10*time.Second, 10*time.Millisecond,
		"a retry is logged at WARN by the default logger: %s", out.String())
}

func TestRouter_stats_count_dead_letters_and_undecodable_messages(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		return middleware.Permanent(errors.New("no"))
	})
	start(t, r)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	_, err = e.srv.JS.PublishMsg(ctxT(t), &nats.Msg{Subject: "auth.user.created", Data: []byte("{not json")})
	require.NoError(t, err)
	e.waitDeadLetters(t, 2)
	e.waitSettled(t, "users")
	st := r.Stats()
	assert.Equal(t, uint64(2), st.DeadLettered)
	assert.Equal(t, uint64(1), st.Undecodable)
	assert.Equal(t, uint64(1), st.Failed)
}
