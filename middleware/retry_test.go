package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

func TestRetry_decides_between_redelivery_and_dead_letter(t *testing.T) {
	boom := errors.New("boom")
	backoff := transport.Backoff{Jitter: -1} // 1s, 2s, 4s...
	tests := []struct {
		name       string
		attempt    uint64
		handlerErr error
		wantReason string // "" = no verdict
		wantDelay  string // NakWithDelay mark; "" = none
		wantErrIs  error
	}{
		{"first failure is redelivered after Initial", 1, boom, "", "1s", boom},
		{"third failure waits longer", 3, boom, "", "4s", boom},
		{"failure on the last delivery is dead-lettered", 4, boom, middleware.ReasonMaxDeliver, "", boom},
		{"beyond the last delivery the handler is not called", 9, boom, middleware.ReasonMaxDeliver, "", middleware.ErrAttemptsExhausted},
		{"permanent error skips retries", 1, middleware.Permanent(boom), middleware.ReasonPermanent, "", boom},
		{"unmarshal error is not retried", 1, fmt.Errorf("decode: %w", marshaler.ErrUnmarshal), middleware.ReasonUnmarshal, "", marshaler.ErrUnmarshal},
		{"explicit verdict passes through", 2, middleware.DeadLetter(middleware.ReasonSchemaVersion, boom), middleware.ReasonSchemaVersion, "", boom},
		{"unknown attempt is never the last", 0, boom, "", "1s", boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: 4, Backoff: backoff})
			require.NoError(t, err)
			msg := delivered("ev-1", "auth.user.created", 7, tt.attempt)
			calls := 0
			out, err := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				calls++
				return []*message.Message{message.NewMessage("out", nil)}, tt.handlerErr
			})(msg)

			require.Error(t, err)
			wantCalls := 1
			if tt.attempt > 4 {
				wantCalls = 0 // an extra delivery only retries the dead-letter publish
			}
			assert.Equal(t, wantCalls, calls)
			assert.Nil(t, out, "a failed handler's output is dropped")
			assert.ErrorIs(t, err, tt.wantErrIs)
			reason, dl := middleware.Classify(err)
			assert.Equal(t, tt.wantReason, reason)
			assert.Equal(t, tt.wantReason != "", dl)
			assert.Equal(t, tt.wantDelay, nakDelay(msg))
		})
	}
}

func TestRetry_success_passes_output_through(t *testing.T) {
	r, err := middleware.NewRetry(middleware.RetryConfig{})
	require.NoError(t, err)
	want := []*message.Message{message.NewMessage("out", nil)}
	out, err := r.Middleware(func(*message.Message) ([]*message.Message, error) { return want, nil })(delivered("e", "a.b", 1, 5))
	require.NoError(t, err)
	assert.Equal(t, want, out)
}

func TestRetry_cancelled_attempt_is_never_a_verdict(t *testing.T) {
	r, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: 2, Backoff: transport.Backoff{Jitter: -1}})
	require.NoError(t, err)
	msg := delivered("e", "a.b", 1, 2)
	ctx, cancel := context.WithCancel(msg.Context()) // keeps the delivery
	cancel()                                         // shutdown
	msg.SetContext(ctx)
	_, err = r.Middleware(func(m *message.Message) ([]*message.Message, error) { return nil, m.Context().Err() })(msg)
	require.ErrorIs(t, err, context.Canceled)
	_, dl := middleware.Classify(err)
	assert.False(t, dl, "redelivered, not dead-lettered as max_deliver: the attempt says nothing about the message")
	assert.Equal(t, "2s", nakDelay(msg))
}

// TestRetry_past_max_deliver_does_not_call_the_handler: the library enforces
// the attempt limit (the server's max_deliver is unlimited), so a delivery
// past MaxDeliver (the last attempt's dead-letter publish failed, or its
// process died) is a verdict without a handler call, which the DeadLetterer
// outside stores.
func TestRetry_past_max_deliver_does_not_call_the_handler(t *testing.T) {
	tests := []struct {
		name       string
		maxDeliver int
		attempt    uint64
		wantCalled bool
	}{
		{"one past the limit", 3, 4, false},
		{"far past the limit", 3, 1000, false},
		{"the last attempt still runs", 3, 3, true},
		{"unlimited never stops", -1, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, false)
			r, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: tt.maxDeliver, Backoff: transport.Backoff{Jitter: -1}})
			require.NoError(t, err)
			calls := 0
			msg := delivered("ev-1", testSubject, 5, tt.attempt)
			_, err = env.dl.Middleware(r.Middleware(handlerReturning(&calls, errors.New("db down"))))(msg)

			assert.Equal(t, tt.wantCalled, calls == 1)
			if tt.wantCalled {
				if tt.maxDeliver > 0 {
					require.NoError(t, err, "the last attempt's failure is dead-lettered")
				} else {
					require.Error(t, err, "retried")
					assert.NotEmpty(t, nakDelay(msg))
				}
				return
			}
			require.NoError(t, err, "dead-lettered, then acked")
			got := env.dlqMessages(t)
			require.Len(t, got, 1)
			assert.Equal(t, middleware.ReasonMaxDeliver, got[0].Header.Get(middleware.HeaderReason))
			assert.Contains(t, got[0].Header.Get(middleware.HeaderError), middleware.ErrAttemptsExhausted.Error())
			assert.Equal(t, strconv.FormatUint(tt.attempt, 10), got[0].Header.Get(middleware.HeaderDeliveries))
			assert.Empty(t, nakDelay(msg))
		})
	}
}

func TestRetry_config_validation(t *testing.T) {
	for _, cfg := range []middleware.RetryConfig{
		{MaxDeliver: -2},
		{Backoff: transport.Backoff{Multiplier: 0.1}},
	} {
		_, err := middleware.NewRetry(cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: -1, Backoff: transport.Backoff{Initial: time.Millisecond}})
	assert.NoError(t, err, "-1 is unlimited")
}
