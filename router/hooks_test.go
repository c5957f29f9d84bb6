package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// outcomes collects Observe's outcomes.
type outcomes struct {
	mu  sync.Mutex
	all []router.Outcome
}

func (o *outcomes) observe(out router.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, out)
}

func (o *outcomes) list() []router.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]router.Outcome(nil), o.all...)
}

func (o *outcomes) wait(t *testing.T, n int) []router.Outcome {
	t.Helper()
	require.Eventually(t, func() bool { return len(o.list()) >= n }, 20*time.Second, 10*time.Millisecond, "waiting for %d outcomes", n)
	return o.list()
}

// storeTwice stores ev a second time under another message id, as a producer
// retrying with a fresh id would: JetStream keeps both copies.
func (e *env) storeTwice(t *testing.T, subject string, ev *envelope.Event) {
	t.Helper()
	raw, err := marshaler.Default().EventToNATS(subject, ev, marshaler.Relations{})
	require.NoError(t, err)
	raw.Header.Set("Nats-Msg-Id", "retry-"+ev.ID)
	ack, err := e.srv.JS.PublishMsg(ctxT(t), raw)
	require.NoError(t, err)
	require.False(t, ack.Duplicate)
}

func TestObserve_tells_skipped_duplicates_and_unknown_types_from_handled_events(t *testing.T) {
	e := newEnv(t)
	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
	require.NoError(t, err)
	var got outcomes
	cfg := fastConfig()
	cfg.Idempotency = store
	cfg.Observe = got.observe
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var c calls
	r.Group("users", "auth.user.*").On("user.created", func(_ context.Context, ev *envelope.Event) error {
		c.add(ev.ID)
		return nil
	})
	start(t, r)

	ev := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", ev)
	e.storeTwice(t, "auth.user.created", ev)
	e.publish(t, "auth.user.deleted", userEvent("user.deleted", nil))

	all := got.wait(t, 3)
	require.Len(t, all, 3)
	assert.Equal(t, 1, c.n(), "the duplicate did not reach the handler")
	tests := []struct {
		name   string
		typ    string
		result router.Result
		reason string
	}{
		{"handled", "user.created", router.ResultHandled, ""},
		{"duplicate skipped", "user.created", router.ResultSkipped, transport.SkipDuplicate},
		{"unknown type acked", "user.deleted", router.ResultSkipped, transport.SkipUnknownType},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := all[i]
			assert.Equal(t, tt.result, o.Result)
			assert.Equal(t, tt.typ, o.Type)
			assert.Equal(t, tt.reason, o.Reason)
			assert.Equal(t, "users", o.Group)
			assert.Equal(t, "org-123", o.OrganizationID)
			assert.NoError(t, o.Err)
		})
	}
	assert.Equal(t, uint64(1), r.Stats().UnknownType)
}

// instrumented is an Instrument middleware that records what it saw.
type instrumented struct {
	mu       sync.Mutex
	name     string
	order    *[]string
	verdicts []string
}

type instrumentKey struct{}

func (in *instrumented) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		in.mu.Lock()
		*in.order = append(*in.order, in.name)
		in.mu.Unlock()
		d := transport.FromContext(msg.Context())
		msg.SetContext(context.WithValue(msg.Context(), instrumentKey{}, in.name))
		out, err := h(msg)
		verdict := "handled"
		switch {
		case err != nil:
			verdict = "retried"
		case middleware.VerdictOf(msg).Kind == transport.DeadLettered:
			verdict = "dead_lettered:" + middleware.VerdictOf(msg).Reason
		}
		if d == nil {
			verdict = "no delivery in context"
		}
		in.mu.Lock()
		in.verdicts = append(in.verdicts, verdict)
		in.mu.Unlock()
		return out, err
	}
}

func (in *instrumented) seen() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.verdicts...)
}

func TestInstrument_wraps_the_whole_stack_and_its_context_reaches_the_handler(t *testing.T) {
	e := newEnv(t)
	var order []string
	outer := &instrumented{name: "outer", order: &order}
	inner := &instrumented{name: "inner", order: &order}
	cfg := fastConfig()
	cfg.MaxDeliver = 2
	cfg.Instrument = []message.HandlerMiddleware{outer.middleware, inner.middleware}
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var mu sync.Mutex
	var ctxValues []any
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		mu.Lock()
		ctxValues = append(ctxValues, ctx.Value(instrumentKey{}))
		mu.Unlock()
		if envelope.CorrelationID(ctx) == "" {
			return errors.New("correlation id missing: Instrument must sit outside Correlation")
		}
		return errors.New("fails every time")
	})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	e.waitDeadLetters(t, 1)
	require.Eventually(t, func() bool { return len(outer.seen()) == 2 && len(inner.seen()) == 2 }, 20*time.Second, 10*time.Millisecond)

	want := []string{"retried", "dead_lettered:" + middleware.ReasonMaxDeliver}
	assert.Equal(t, want, outer.seen(), "each delivery's final verdict")
	assert.Equal(t, want, inner.seen())
	mu.Lock()
	assert.Equal(t, []any{"inner", "inner"}, ctxValues, "the context set by the innermost Instrument reaches the handler")
	mu.Unlock()
	outer.mu.Lock()
	assert.Equal(t, []string{"outer", "inner", "outer", "inner"}, order, "the first Instrument is the outermost")
	outer.mu.Unlock()
}

func TestInstrument_nil_middleware_is_refused(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	cfg.Instrument = []message.HandlerMiddleware{nil}
	_, err := router.New(e.srv.Conn, cfg)
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}
