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
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// orderProbe records, per key, the events handled successfully in the
// order their handlers returned, and counts a key with two events in a
// handler at once.
type orderProbe struct {
	mu       sync.Mutex
	inFlight map[string]int
	handled  map[string][]int
	calls    map[string]int // handler calls per event id
	overlaps atomic.Int64
	done     atomic.Int64 // events handled successfully
}

func newOrderProbe() *orderProbe {
	return &orderProbe{inFlight: map[string]int{}, handled: map[string][]int{}, calls: map[string]int{}}
}

// event i of key k fails once, twice, or for good, by a fixed rule: 5 %
// fail once or twice, 0.5 % permanently.
func failures(k, i int) (transient int, permanent bool) {
	switch h := (k*7919 + i*104729) % 1000; {
	case h < 5:
		return 0, true
	case h < 30:
		return 1, false
	case h < 55:
		return 2, false
	}
	return 0, false
}

func (p *orderProbe) handler(ctx context.Context, e *envelope.Event) error {
	m, err := e.DataMap()
	if err != nil {
		return err
	}
	key := m["key"].(string)
	n := int(mustInt(m["n"]))
	k := int(mustInt(m["k"]))
	p.mu.Lock()
	p.inFlight[key]++
	if p.inFlight[key] > 1 {
		p.overlaps.Add(1)
	}
	p.calls[e.ID]++
	call := p.calls[e.ID]
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight[key]--
		p.mu.Unlock()
	}()
	// Long enough for other events of the key to arrive and wait.
	time.Sleep(100 * time.Microsecond)
	transient, permanent := failures(k, n)
	if permanent {
		return middleware.Permanent(errors.New("refused for good"))
	}
	if call <= transient {
		return fmt.Errorf("transient failure %d of %d", call, transient)
	}
	p.mu.Lock()
	p.handled[key] = append(p.handled[key], n)
	p.mu.Unlock()
	p.done.Add(1)
	return nil
}

func mustInt(v any) int64 {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	panic(fmt.Sprintf("not a number: %T", v))
}

func TestRouter_keyed_group_handles_each_keys_events_one_at_a_time_in_publish_order_through_retries_and_dead_letters(t *testing.T) {
	keys, perKey := 1000, 20
	if testing.Short() {
		keys = 200
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			p := newOrderProbe()
			cfg := suiteConfig()
			cfg.Concurrency = 16
			cfg.MaxDeliver = 3 // a twice-failing event succeeds on its third run
			cfg.Backoff = transport.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, Jitter: -1}
			cfg.AckWait = 10 * time.Second
			cfg.OrderKey = router.KeyDataField("key")
			r := f.newRouter(t, cfg)
			r.Group("users", "auth.user.>").On("user.updated", p.handler)
			start(t, r)

			wantDead, wantDone := 0, 0
			order := map[string][]int{} // per key, the events that must succeed, in publish order
			for n := range perKey {
				for k := range keys {
					key := fmt.Sprintf("user-%04d", k)
					ev := userEvent("user.updated", map[string]any{"key": key, "k": k, "n": n})
					require.NoError(t, f.publish(ctxT(t), "auth.user.updated", ev))
					if _, permanent := failures(k, n); permanent {
						wantDead++
					} else {
						wantDone++
						order[key] = append(order[key], n)
					}
				}
			}
			require.Eventually(t, func() bool { return p.done.Load() >= int64(wantDone) }, 2*time.Minute, 10*time.Millisecond,
				"%d of %d handled", p.done.Load(), wantDone)
			dl := waitDead(t, f, wantDead)
			waitIdle(t, f, "users")

			assert.Zero(t, p.overlaps.Load(), "a key had two events in a handler at once")
			p.mu.Lock()
			defer p.mu.Unlock()
			for key, want := range order {
				assert.Equal(t, want, p.handled[key], "key %s: handled order", key)
			}
			assert.Len(t, dl, wantDead, "exactly the permanent failures are dead-lettered")
			for _, l := range dl {
				assert.Equal(t, "permanent", l.Header.Get(middleware.HeaderReason))
				assert.NotEmpty(t, l.Header.Get(middleware.HeaderOrderKey), "the dead letter names its key")
			}
		})
	}
}

func TestRouter_keyed_group_lets_other_keys_flow_while_one_key_waits_for_its_retry(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			cfg := suiteConfig()
			cfg.Concurrency = 2
			cfg.FetchBatch = 16 // a blocked key holds at most 4 (FetchBatch/8, min 4)
			cfg.MaxAckPending = 64
			cfg.AckWait = 10 * time.Second
			cfg.MaxDeliver = 5
			// The retry's delay is far longer than the cold key needs.
			cfg.Backoff = transport.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second, Jitter: -1}
			cfg.OrderKey = router.KeyDataField("key")
			r := f.newRouter(t, cfg)
			var mu sync.Mutex
			var seq []string
			failedOnce := false
			r.Group("users", "auth.user.>").On("user.updated", func(_ context.Context, e *envelope.Event) error {
				m, _ := e.DataMap()
				key, n := m["key"].(string), mustInt(m["n"])
				mu.Lock()
				defer mu.Unlock()
				if key == "hot" && n == 0 && !failedOnce {
					failedOnce = true
					return errors.New("first run fails")
				}
				seq = append(seq, fmt.Sprintf("%s/%d", key, n))
				return nil
			})
			// The hot key's head fails; 40 more of the hot key follow, far
			// more than it may hold while it waits, then 10 of another key.
			// All are in the stream before the group starts.
			for n := range 41 {
				require.NoError(t, f.publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": "hot", "n": n})))
			}
			for n := range 10 {
				require.NoError(t, f.publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": "cold", "n": n})))
			}
			start(t, r)
			require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seq) == 51 }, 30*time.Second, 5*time.Millisecond)
			waitIdle(t, f, "users")
			mu.Lock()
			defer mu.Unlock()
			var hot, cold []string
			firstHot := -1
			lastCold := -1
			for i, s := range seq {
				if s[:3] == "hot" {
					hot = append(hot, s)
					if firstHot < 0 {
						firstHot = i
					}
				} else {
					cold = append(cold, s)
					lastCold = i
				}
			}
			for n := range 41 {
				assert.Equal(t, fmt.Sprintf("hot/%d", n), hot[n], "the hot key in publish order")
			}
			assert.Len(t, cold, 10)
			assert.Less(t, lastCold, firstHot, "the cold key was not held back by the hot key waiting for its retry: %v", seq)
		})
	}
}
