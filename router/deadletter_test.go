package router_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

func TestRouter_dead_letter_that_fails_on_the_last_delivery_is_retried_on_extra_deliveries(t *testing.T) {
	srv := eventstest.NewServer(t)
	// AUTH_EVENTS only: the DLQ stream is missing, so dead-letter publishes fail.
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	e := &env{srv: srv, pub: pub}

	cfg := fastConfig()
	cfg.MaxDeliver = 2
	cfg.DeadLetter.RetryBackoff = transport.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: -1}
	dlqFailed := make(chan struct{})
	var once sync.Once
	cfg.Observe = func(o router.Outcome) {
		if errors.Is(o.Err, transport.ErrDeadLetter) {
			once.Do(func() { close(dlqFailed) })
		}
	}
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	var c calls
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		c.add(ev.ID)
		return errors.New("always fails")
	})
	start(t, r)

	ev := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", ev)
	select {
	case <-dlqFailed:
	case <-time.After(20 * time.Second):
		t.Fatal("the dead-letter publish never failed")
	}
	_, err = jetstream.Apply(ctxT(t), srv.JS, jetstream.DeadLetterStream()) // the DLQ comes back
	require.NoError(t, err)

	dl := e.waitDeadLetters(t, 1)
	e.waitSettled(t, "users")
	assert.Equal(t, 2, c.n(), "the handler had exactly MaxDeliver attempts")
	assert.Equal(t, middleware.ReasonMaxDeliver, header(dl[0], middleware.HeaderReason))
	assert.Equal(t, ev.ID, header(dl[0], "ce-id"))
}

func TestRouter_group_max_deliver_override_drives_the_retry_decision(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig()) // router MaxDeliver 4
	require.NoError(t, err)
	var c calls
	r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{"auth.user.*"}, MaxDeliver: 2}).
		On("user.created", func(ctx context.Context, ev *envelope.Event) error {
			c.add(ev.ID)
			return errors.New("fails")
		})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	dl := e.waitDeadLetters(t, 1)
	e.waitSettled(t, "users")
	assert.Equal(t, 2, c.n(), "the group's MaxDeliver, not the router's")
	assert.Equal(t, "2", header(dl[0], middleware.HeaderDeliveries))
	assert.Equal(t, middleware.ReasonMaxDeliver, header(dl[0], middleware.HeaderReason))
}

func TestRouter_registration_after_Run_is_refused(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	g := r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	start(t, r)
	g.On("user.deleted", func(context.Context, *envelope.Event) error { return nil })
	assert.ErrorIs(t, g.Err(), router.ErrRunning)
	assert.ErrorIs(t, r.Group("late", "auth.>").Err(), router.ErrRunning)
}

func TestRouter_typed_nil_handler_is_a_config_error(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	g := r.Group("users", "auth.user.*")
	router.Handle[roleUpdated](g, "user.role.updated", nil)
	assert.ErrorIs(t, g.Err(), envelope.ErrInvalidConfig)
	assert.ErrorIs(t, r.Run(ctxT(t)), envelope.ErrInvalidConfig)
}

// flusher records Flush calls and fails when told to.
type flusher struct {
	calls atomic.Int32
	err   error
}

func (f *flusher) Flush(ctx context.Context) error {
	f.calls.Add(1)
	return f.err
}

func TestRouter_run_flushes_publishers_at_shutdown(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"flush ok: clean shutdown", nil, nil},
		{"flush failure is reported", errors.New("acks pending"), router.ErrShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			f := &flusher{err: tt.err}
			cfg := fastConfig()
			cfg.Flush = []router.Flusher{f, e.pub}
			r, err := router.New(e.srv.Conn, cfg)
			require.NoError(t, err)
			r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
				// A handler that publishes asynchronously: its publish must
				// be flushed when Run returns.
				return e.pub.PublishAsync(ctx, "auth.user.welcomed", userEvent("user.welcomed", nil))
			})
			stop := start(t, r)
			e.publish(t, "auth.user.created", userEvent("user.created", nil))
			e.waitSettled(t, "users")
			assert.Zero(t, f.calls.Load(), "not flushed while running")

			err = stop()
			assert.Equal(t, int32(1), f.calls.Load(), "flushed once at shutdown")
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Zero(t, e.pub.Stats().Pending, "the async publish was flushed")
		})
	}
}
