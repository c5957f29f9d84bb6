package router_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

func TestRouter_two_groups_on_one_event_judge_and_dead_letter_it_each_on_their_own(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.srv.JS.DeleteStream(ctxT(t), dlqStream)) // dead letters fail at first
	cfg := liveConfig()
	cfg.MaxDeliver = 3
	cfg.DeadLetter.RetryBackoff = transport.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: -1}
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var aCalls, bCalls atomic.Int32
	r.Group("a", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		aCalls.Add(1)
		return middleware.Permanent(errors.New("a refuses it"))
	})
	r.Group("b", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		bCalls.Add(1)
		return errors.New("b fails for now")
	})
	start(t, r)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))

	// b keeps its own attempts while a's verdict waits for the DLQ.
	require.Eventually(t, func() bool { return bCalls.Load() == 3 }, 20*time.Second, 10*time.Millisecond)
	_, err = e.srv.JS.CreateStream(ctxT(t), natsjs.StreamConfig{Name: dlqStream, Subjects: []string{"dlq.>"}})
	require.NoError(t, err)
	dl := e.waitDeadLetters(t, 2)
	e.waitSettled(t, "a")
	e.waitSettled(t, "b")
	got := map[string]string{}
	for _, m := range dl {
		got[header(m, middleware.HeaderConsumer)] = header(m, middleware.HeaderReason)
	}
	assert.Equal(t, map[string]string{"a": "permanent", "b": "max_deliver"}, got, "one dead letter per group, each with its own reason")
	assert.Equal(t, int32(1), aCalls.Load(), "a's verdict is not re-run")
	assert.Equal(t, int32(3), bCalls.Load(), "b's attempts are its own")
}

func TestRouter_health_is_not_ready_while_stopping_nor_after_Run_returned(t *testing.T) {
	e := newEnv(t)
	cfg := liveConfig()
	cfg.CloseTimeout = 10 * time.Second
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	inHandler, release := make(chan struct{}), make(chan struct{})
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		close(inHandler)
		<-release
		return nil
	})
	stop := start(t, r)
	require.True(t, r.Health(ctxT(t)).Ready)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	<-inHandler

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool {
		h := r.Health(ctxT(t))
		return !h.Ready && len(h.Groups) == 1 && h.Groups[0].State == transport.StateStopping
	}, 10*time.Second, 5*time.Millisecond, "stopping while its handler finishes")
	close(release)
	require.NoError(t, <-stopped)
	h := r.Health(ctxT(t))
	assert.False(t, h.Ready)
	assert.Empty(t, h.Groups, "no group once Run returned")
}

func TestRouter_shutdown_gives_every_group_one_shared_close_deadline(t *testing.T) {
	e := newEnv(t)
	cfg := liveConfig()
	cfg.CloseTimeout = time.Second
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var mu sync.Mutex
	cut := map[string]time.Time{}
	var started sync.WaitGroup
	for _, g := range []string{"a", "b", "c"} {
		started.Add(1)
		r.Group(g, "auth.user.>").On("user.created", func(ctx context.Context, _ *envelope.Event) error {
			started.Done()
			<-ctx.Done() // outlives the deadline: cut off
			mu.Lock()
			cut[g] = time.Now()
			mu.Unlock()
			return ctx.Err()
		})
	}
	stop := start(t, r)
	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	started.Wait()
	begin := time.Now()
	err = stop()
	require.ErrorIs(t, err, router.ErrShutdown, "three handlers cut off")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, cut, 3)
	for g, at := range cut {
		// One deadline for all: each was cut CloseTimeout after the stop,
		// not one CloseTimeout after the group before it.
		assert.Less(t, at.Sub(begin), 2*cfg.CloseTimeout, "group %s", g)
	}
}
