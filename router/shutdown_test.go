package router_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Shutdown is not a failure: stopping a router hands back what it queued
// and never started, and the next delivery of those events is still their
// first handler attempt. Run returns only once no handler runs.

// handledCounts counts handler runs by event id.
type handledCounts struct {
	mu  sync.Mutex
	ids map[string]int
	n   atomic.Int64
}

func (h *handledCounts) add(id string) {
	h.mu.Lock()
	h.ids[id]++
	h.mu.Unlock()
	h.n.Add(1)
}

func (h *handledCounts) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.ids))
	for k, v := range h.ids {
		out[k] = v
	}
	return out
}

func TestRouter_stop_and_start_ten_times_spends_no_attempt_of_events_whose_handler_never_ran(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			const events, cycles, perCycle = 200, 10, 15
			var ids []string
			for i := range events {
				ev := event(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "user.created", map[string]any{"i": i})
				require.NoError(t, f.publish(ctxT(t), "auth.user.created", ev))
				ids = append(ids, ev.ID)
			}
			cfg := suiteConfig()
			cfg.MaxDeliver = 1 // any delivery read as a second attempt is dead-lettered
			cfg.CloseTimeout = 20 * time.Second
			h := &handledCounts{ids: map[string]int{}}
			for cycle := range cycles {
				r := f.newRouter(t, cfg)
				r.Group("users", "auth.user.>").On("user.created", func(_ context.Context, e *envelope.Event) error {
					h.add(e.ID)
					time.Sleep(time.Millisecond) // slow: the rest of the 200 wait queued
					return nil
				})
				stop := start(t, r)
				target := int64(min(events, (cycle+1)*perCycle))
				if cycle == cycles-1 {
					target = events
				}
				require.Eventually(t, func() bool { return h.n.Load() >= target }, 30*time.Second, 2*time.Millisecond,
					"cycle %d: %d handled, want %d", cycle, h.n.Load(), target)
				require.NoError(t, stop(), "cycle %d: a clean stop", cycle)
			}
			got := h.snapshot()
			for _, id := range ids {
				assert.Equal(t, 1, got[id], "event %s handled exactly once", id)
			}
			assert.Empty(t, f.deadLetters(t), "no event dead-lettered: a stop is not a handler attempt")
			waitIdle(t, f, "users")
		})
	}
}

func TestRouter_dead_letter_states_the_real_number_of_handler_runs_after_a_stop(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			cfg := suiteConfig()
			cfg.MaxDeliver = 2
			blocker := event("00000000-0000-4000-8000-000000000001", "user.created", nil)
			failing := event("00000000-0000-4000-8000-000000000002", "user.created", nil)
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", blocker))
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", failing))

			// First run: the blocker holds the only worker, the failing
			// event waits queued behind it; the stop hands it back.
			var runs atomic.Int32
			inBlocker, release := make(chan struct{}), make(chan struct{})
			handler := func(_ context.Context, e *envelope.Event) error {
				if e.ID == blocker.ID {
					select {
					case <-inBlocker:
					default:
						close(inBlocker)
					}
					<-release
					return nil
				}
				runs.Add(1)
				return errors.New("always fails")
			}
			r1 := f.newRouter(t, cfg)
			r1.Group("users", "auth.user.>").On("user.created", handler)
			stop := start(t, r1)
			<-inBlocker
			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			require.Eventually(t, func() bool {
				h := r1.Health(ctxT(t))
				return len(h.Groups) == 1 && h.Groups[0].State == transport.StateStopping
			}, 10*time.Second, time.Millisecond, "the stop began")
			close(release)
			require.NoError(t, <-stopped)
			require.Zero(t, runs.Load(), "the failing event never reached its handler in the first run")

			// Second run: two handler runs, then the dead letter.
			r2 := f.newRouter(t, cfg)
			r2.Group("users", "auth.user.>").On("user.created", handler)
			start(t, r2)
			dl := waitDead(t, f, 1)
			require.Len(t, dl, 1)
			assert.Equal(t, int32(2), runs.Load(), "MaxDeliver 2: the handler ran twice")
			assert.Equal(t, "max_deliver", dl[0].Header.Get(middleware.HeaderReason))
			assert.Equal(t, "2", dl[0].Header.Get(middleware.HeaderDeliveries), "handler attempts, not deliveries")
			assert.Contains(t, dl[0].Header.Get(middleware.HeaderError), "attempt 2 of 2")
		})
	}
}

func TestRouter_Run_returns_only_when_no_handler_runs(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			var logs logLines
			cfg := suiteConfig()
			cfg.CloseTimeout = 100 * time.Millisecond
			cfg.Logger = middleware.NewSlogLogger(logs.logger())
			r := f.newRouter(t, cfg)
			started, release := make(chan struct{}), make(chan struct{})
			var returned atomic.Bool
			r.Group("users", "auth.user.>").On("user.created", func(ctx context.Context, _ *envelope.Event) error {
				close(started)
				<-release // ignores its cancelled context
				returned.Store(true)
				return nil
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runDone := make(chan bool, 1)
			go func() {
				_ = r.Run(ctx)
				runDone <- returned.Load()
			}()
			<-r.Running()
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", userEvent("user.created", nil)))
			<-started
			cancel()

			// Past the close deadline the handler is named at warn while Run
			// waits for it.
			line := logs.waitFor(t, "Handler still running after its context was cancelled at the close deadline; shutdown waits for it", 1)[0]
			assert.Equal(t, "WARN", line["level"])
			assert.Equal(t, "auth.user.created", line["subject"])
			assert.Equal(t, "users", line["group"])
			select {
			case <-runDone:
				t.Fatal("Run returned while a handler still ran")
			default:
			}
			close(release)
			select {
			case handlerDone := <-runDone:
				assert.True(t, handlerDone, "the handler had returned when Run returned")
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after the handler did")
			}
		})
	}
}
