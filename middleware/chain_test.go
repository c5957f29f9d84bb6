package middleware_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// chain wraps h in the recommended order, outermost first (see doc.go).
func chain(t *testing.T, env *dlqEnv, maxDeliver int, h message.HandlerFunc) message.HandlerFunc {
	t.Helper()
	corr, err := middleware.NewCorrelation(middleware.CorrelationConfig{})
	require.NoError(t, err)
	logging, err := middleware.NewLogging(middleware.LoggingConfig{Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	retry, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: maxDeliver, Backoff: transport.Backoff{Jitter: -1}})
	require.NoError(t, err)
	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
	require.NoError(t, err)
	idem, err := middleware.NewIdempotency(middleware.IdempotencyConfig{Store: store})
	require.NoError(t, err)
	timeout, err := middleware.Timeout(100 * time.Millisecond)
	require.NoError(t, err)

	mws := []message.HandlerMiddleware{corr.Middleware, logging.Middleware, env.dl.Middleware, retry.Middleware, idem.Middleware, timeout, wmmiddleware.Recoverer}
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

func TestChain_panicking_handler_is_retried_then_dead_lettered(t *testing.T) {
	env := newDLQEnv(t, false)
	calls := 0
	h := chain(t, env, 3, func(*message.Message) ([]*message.Message, error) {
		calls++
		panic("nil map")
	})

	for attempt := uint64(1); attempt <= 3; attempt++ {
		msg := delivered("ev-1", testSubject, 1, attempt)
		_, err := h(msg)
		if attempt < 3 {
			var rp wmmiddleware.RecoveredPanicError
			require.ErrorAs(t, err, &rp, "attempt %d: Nacked", attempt)
			assert.NotEmpty(t, nakDelay(msg))
			assert.Empty(t, env.dlqMessages(t))
			continue
		}
		require.NoError(t, err, "last attempt: dead-lettered, then acked")
	}
	assert.Equal(t, 3, calls, "a failed attempt releases its idempotency claim")
	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	assert.Equal(t, middleware.ReasonMaxDeliver, got[0].Header.Get(middleware.HeaderReason))
	assert.True(t, strings.Contains(got[0].Header.Get(middleware.HeaderError), "panic occurred"), got[0].Header.Get(middleware.HeaderError))
}

func TestChain_timed_out_handler_is_retried_and_context_is_restored(t *testing.T) {
	env := newDLQEnv(t, false)
	h := chain(t, env, 3, func(m *message.Message) ([]*message.Message, error) {
		<-m.Context().Done()
		return nil, m.Context().Err()
	})
	msg := delivered("ev-1", testSubject, 1, 1)
	_, err := h(msg)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, msg.Context().Err(), "the subscriber settles with a live context")
	assert.Equal(t, "1s", nakDelay(msg))
}
