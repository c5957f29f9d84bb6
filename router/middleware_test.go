package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// User middleware (Config.Middleware, GroupConfig.Middleware) sits between
// Retry and Idempotency:
//
//	Correlation -> Logging -> [Observe] -> DeadLetterer -> Retry -> Middleware... -> Idempotency -> Timeout -> Recoverer -> handler
//
// These tests prove each consequence of that position, on both transports.

// probe is a metrics-like user middleware: it counts every call and what it
// saw of the message (attempt, correlation id, whether the stack below
// skipped it as a duplicate).
type probe struct {
	mu    sync.Mutex
	name  string
	order *[]string
	seen  []probeCall
}

type probeCall struct {
	Attempt     uint64
	Correlation string
	Skipped     string
	Err         string
}

func (p *probe) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		p.mu.Lock()
		if p.order != nil {
			*p.order = append(*p.order, p.name)
		}
		p.mu.Unlock()
		out, err := h(msg)
		c := probeCall{Correlation: envelope.CorrelationID(msg.Context()), Skipped: middleware.VerdictOf(msg).Reason}
		if d := transport.FromContext(msg.Context()); d != nil {
			c.Attempt = d.Attempt
		}
		if err != nil {
			c.Err = err.Error()
		}
		p.mu.Lock()
		p.seen = append(p.seen, c)
		p.mu.Unlock()
		return out, err
	}
}

func (p *probe) calls() []probeCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]probeCall(nil), p.seen...)
}

func TestRouter_user_middleware_sees_every_attempt_inside_retry_with_the_correlation_id(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			p := &probe{}
			cfg := suiteConfig() // MaxDeliver 4
			cfg.Middleware = []message.HandlerMiddleware{p.Middleware}
			r := f.newRouter(t, cfg)
			r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
				return errors.New("smtp down")
			})
			start(t, r)
			require.NoError(t, f.publish(envelope.WithCorrelationID(ctxT(t), "request-7"), "auth.user.created", event("evt-mw", "user.created", nil)))
			dl := waitDead(t, f, 1)
			waitIdle(t, f, "users")
			assert.Equal(t, []probeCall{
				{Attempt: 1, Correlation: "request-7", Err: "smtp down"},
				{Attempt: 2, Correlation: "request-7", Err: "smtp down"},
				{Attempt: 3, Correlation: "request-7", Err: "smtp down"},
				{Attempt: 4, Correlation: "request-7", Err: "smtp down"},
			}, p.calls(), "one call per attempt, inside Correlation, below Retry (which turns the last error into the dead letter)")
			assert.Equal(t, middleware.ReasonMaxDeliver, dl[0].Header.Get(middleware.HeaderReason))
		})
	}
}

func TestRouter_error_of_a_user_middleware_is_retried_then_dead_lettered_like_a_handlers(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			gate := func(h message.HandlerFunc) message.HandlerFunc {
				return func(msg *message.Message) ([]*message.Message, error) {
					return nil, errors.New("quota service unavailable")
				}
			}
			calls := 0
			cfg := suiteConfig()
			r := f.newRouter(t, cfg)
			r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{"auth.user.*"}, Middleware: []message.HandlerMiddleware{gate}}).
				On("user.created", func(context.Context, *envelope.Event) error {
					calls++
					return nil
				})
			start(t, r)
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-gated", "user.created", nil)))
			dl := waitDead(t, f, 1)
			waitIdle(t, f, "users")
			assert.Zero(t, calls, "the handler never ran")
			assert.Equal(t, middleware.ReasonMaxDeliver, dl[0].Header.Get(middleware.HeaderReason))
			assert.Equal(t, "4", dl[0].Header.Get(middleware.HeaderDeliveries))
			assert.Contains(t, dl[0].Header.Get(middleware.HeaderError), "quota service unavailable")
			assert.Equal(t, router.Stats{Retried: 3, DeadLettered: 1}, r.Stats())
		})
	}
}

func TestRouter_user_middleware_wraps_idempotency_so_a_skipped_duplicate_passes_through_it(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
			require.NoError(t, err)
			p := &probe{}
			cfg := suiteConfig()
			cfg.Idempotency = store
			cfg.Middleware = []message.HandlerMiddleware{p.Middleware}
			r := f.newRouter(t, cfg)
			handled := 0
			r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
				handled++
				return nil
			})
			start(t, r)
			ev := event("evt-dup", "user.created", nil)
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", ev))
			copyOf(t, f, ev, "copy-2")
			require.Eventually(t, func() bool { return len(p.calls()) == 2 }, 20*time.Second, 10*time.Millisecond)
			waitIdle(t, f, "users")
			got := p.calls()
			assert.Equal(t, 1, handled, "the handler ran once")
			assert.Empty(t, got[0].Skipped)
			assert.NotEmpty(t, got[1].Skipped, "the duplicate went through the user middleware, marked skipped by Idempotency below it")
		})
	}
}

func TestRouter_group_middleware_runs_inside_the_routers_and_only_for_its_group(t *testing.T) {
	f := newMemFixture(t)
	var mu sync.Mutex
	var order []string // the users group's delivery, outermost first
	users := func(msg *message.Message) bool {
		d := transport.FromContext(msg.Context())
		return d != nil && d.Consumer == "users"
	}
	mark := func(name string) message.HandlerMiddleware {
		return func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				if users(msg) {
					mu.Lock()
					order = append(order, name)
					mu.Unlock()
				}
				return h(msg)
			}
		}
	}
	outer := &probe{}
	cfg := suiteConfig()
	cfg.Middleware = []message.HandlerMiddleware{outer.Middleware, mark("router")}
	r := f.newRouter(t, cfg)
	done := make(chan string, 2)
	r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{"auth.user.*"}, Middleware: []message.HandlerMiddleware{mark("group")}}).
		On("user.created", func(context.Context, *envelope.Event) error {
			mu.Lock()
			order = append(order, "handler")
			mu.Unlock()
			done <- "users"
			return nil
		})
	r.Group("audit", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
		done <- "audit"
		return nil
	})
	start(t, r)
	require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-order", "user.created", nil)))
	got := map[string]bool{}
	for range 2 {
		select {
		case g := <-done:
			got[g] = true
		case <-time.After(20 * time.Second):
			t.Fatal("not handled by both groups")
		}
	}
	waitIdle(t, f, "users")
	waitIdle(t, f, "audit")
	assert.Len(t, outer.calls(), 2, "the router's middleware runs for every group")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"router", "group", "handler"}, order, "the group's middleware is appended inside the router's")
}

// TestRouter_watermill_throttle_plugged_in_limits_every_attempt runs
// Watermill's own middleware.Throttle in the router: at most one call per
// tick of its 50ms ticker, so the fifth handler call comes at least five
// ticks after the throttle was made (a lower bound: a ticker never ticks
// early, and each call takes a tick of its own).
func TestRouter_watermill_throttle_plugged_in_limits_every_attempt(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			made := time.Now()
			throttle := wmmiddleware.NewThrottle(1, 50*time.Millisecond)
			cfg := suiteConfig()
			cfg.Middleware = []message.HandlerMiddleware{throttle.Middleware}
			r := f.newRouter(t, cfg)
			rec := newRecorder()
			r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
				rec.add(ctx, e)
				return nil
			})
			start(t, r)
			for i := range 5 {
				require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-throttle-"+string(rune('a'+i)), "user.created", nil)))
			}
			rec.wait(t, 5)
			waitIdle(t, f, "users")
			_, at := rec.snapshot()
			assert.GreaterOrEqual(t, at[4].Sub(made), 5*50*time.Millisecond, "one call per tick of the throttle")
		})
	}
}
