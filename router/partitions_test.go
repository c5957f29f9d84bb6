package router_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/router"
)

// byKey is the partition spec of these tests: auth.user.> by the data
// field "key", in 6 partitions (7 units with the group's own durable).
var byKey = partition.Spec{Subjects: []string{"auth.user.>"}, Count: 6, Key: router.KeyDataField("key")}

// keyProbe records, across every router of a test, the handled order per
// key, and counts a key with two events in a handler at once (in any
// router): per-key order across processes, checked, not inferred.
type keyProbe struct {
	mu       sync.Mutex
	inFlight map[string]int
	handled  map[string][]int
	overlaps atomic.Int64
	total    atomic.Int64
	trace    map[string][]string
}

func newKeyProbe() *keyProbe {
	return &keyProbe{inFlight: map[string]int{}, handled: map[string][]int{}, trace: map[string][]string{}}
}

func (p *keyProbe) handler(ctx context.Context, e *envelope.Event) error {
	return p.handlerOf("")(ctx, e)
}

func (p *keyProbe) handlerOf(who string) func(ctx context.Context, e *envelope.Event) error {
	return func(ctx context.Context, e *envelope.Event) error {
		m, err := e.DataMap()
		if err != nil {
			return err
		}
		key, n := m["key"].(string), int(mustInt(m["n"]))
		p.mu.Lock()
		p.inFlight[key]++
		if p.inFlight[key] > 1 {
			p.overlaps.Add(1)
		}
		p.mu.Unlock()
		time.Sleep(200 * time.Microsecond) // long enough for a key's next event to be ready
		p.mu.Lock()
		p.inFlight[key]--
		p.handled[key] = append(p.handled[key], n)
		if d, ok := router.DeliveryFrom(ctx); ok {
			p.trace[key] = append(p.trace[key], fmt.Sprintf("%d:%s%s/%d/a%d@%s", n, who, d.Consumer, d.StreamSeq, d.Attempt, time.Now().Format("05.000")))
		}
		p.mu.Unlock()
		p.total.Add(1)
		return nil
	}
}

// checkOrder asserts that every key's events were handled in publish
// order, each once (n events of each key, numbered from 0).
func (p *keyProbe) checkOrder(t *testing.T, keys, n int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		if !assert.Equal(t, want, p.handled[key], "key %s: handled once each, in publish order", key) {
			t.Logf("key %s handled as (n:router:durable/seq/attempt@time): %v", key, p.trace[key])
		}
	}
	assert.Zero(t, p.overlaps.Load(), "a key had two events in handlers at once")
}

var routerN atomic.Int64

// partitionedRouter starts a router running the partitioned group "users"
// on auth.user.>, and returns its stop.
func partitionedRouter(t *testing.T, f fixture, p *keyProbe) (*router.Router, func() error) {
	t.Helper()
	cfg := suiteConfig()
	cfg.Concurrency = 4
	cfg.MemberTTL = time.Second
	cfg.CloseTimeout = 5 * time.Second
	r := f.newRouter(t, cfg)
	r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{"auth.user.>"}, Partitions: byKey}).
		On("user.updated", p.handlerOf(fmt.Sprintf("r%d:", routerN.Add(1))))
	return r, start(t, r)
}

// units are the units the router runs of the partitioned group.
func units(r *router.Router) []int {
	for _, ph := range r.Health(context.Background()).Partitioned {
		return ph.Units
	}
	return nil
}

// waitSpread waits until the routers run every unit of the group between
// them, each once, with counts within one of each other.
func waitSpread(t *testing.T, routers ...*router.Router) [][]int {
	t.Helper()
	var got [][]int
	require.Eventually(t, func() bool {
		got = got[:0]
		var all []int
		lo, hi := 1<<30, 0
		for _, r := range routers {
			us := units(r)
			got = append(got, us)
			all = append(all, us...)
			lo, hi = min(lo, len(us)), max(hi, len(us))
		}
		slices.Sort(all)
		return slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6}) && hi-lo <= 1
	}, 30*time.Second, 20*time.Millisecond, "units not spread over %d routers: %v", len(routers), got)
	return got
}

func TestRouter_partitioned_group_spreads_its_partitions_and_keeps_each_keys_order_as_processes_join_and_leave(t *testing.T) {
	const keys, perKey = 60, 30
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			publish := f.partitionedPublish(t, byKey)
			p := newKeyProbe()
			next := make([]int, keys)
			publishRound := func(n int) {
				for range n {
					for k := range keys {
						require.NoError(t, publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": fmt.Sprintf("k%d", k), "n": next[k]})))
						next[k]++
					}
				}
			}

			r1, stop1 := partitionedRouter(t, f, p)
			assert.Len(t, waitSpread(t, r1)[0], 7, "alone, a process runs every partition and the unplaced unit")
			publishRound(5)
			r2, stop2 := partitionedRouter(t, f, p)
			publishRound(5)
			r3, stop3 := partitionedRouter(t, f, p)
			spread := waitSpread(t, r1, r2, r3)
			t.Logf("3 processes: %v", spread)
			publishRound(10)
			require.NoError(t, stop2(), "a process leaves gracefully")
			spread = waitSpread(t, r1, r3)
			t.Logf("after one left: %v", spread)
			publishRound(10)

			if !assert.Eventually(t, func() bool { return p.total.Load() >= keys*perKey }, 30*time.Second, 10*time.Millisecond,
				"%d of %d handled", p.total.Load(), keys*perKey) {
				for _, r := range []*router.Router{r1, r3} {
					h := r.Health(ctxT(t))
					t.Logf("health: %+v", h.Partitioned)
					for _, g := range h.Groups {
						t.Logf("group: %+v", g)
					}
				}
				for u := range 6 {
					t.Logf("durable users-p%d: %+v", u, f.state(t, fmt.Sprintf("users-p%d", u)))
				}
				t.FailNow()
			}
			require.NoError(t, stop1())
			require.NoError(t, stop3())
			p.checkOrder(t, keys, perKey)
			for u := range 6 {
				st := f.state(t, fmt.Sprintf("users-p%d", u))
				assert.Zero(t, st.Pending+uint64(st.AckPending), "partition %d settled", u)
			}
		})
	}
}

func TestRouter_partitioned_group_handles_events_published_without_a_partition_in_its_own_durable(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			p := newKeyProbe()
			r, stop := partitionedRouter(t, f, p)
			waitSpread(t, r)
			// The seed's publisher, without a partition spec.
			for n := range 5 {
				require.NoError(t, f.publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": "k0", "n": n})))
			}
			require.Eventually(t, func() bool { return p.total.Load() == 5 }, 20*time.Second, 10*time.Millisecond)
			h := r.Health(ctxT(t))
			require.Len(t, h.Partitioned, 1)
			assert.Equal(t, uint64(5), h.Partitioned[0].Unplaced, "counted as published without a partition")
			require.NoError(t, stop())
			p.checkOrder(t, 1, 5)
			st := f.state(t, "users")
			assert.Zero(t, st.Pending+uint64(st.AckPending), "read by the group's own durable")
		})
	}
}

func TestRouter_partitioned_group_counts_events_placed_with_another_count(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			other := byKey
			other.Count = 4
			publish := f.partitionedPublish(t, other)
			p := newKeyProbe()
			r, stop := partitionedRouter(t, f, p)
			waitSpread(t, r)
			misplaced := 0
			for k := range 20 {
				key := fmt.Sprintf("k%d", k)
				if other.Of(key) < byKey.Count && other.Of(key) != byKey.Of(key) {
					misplaced++
				}
				require.NoError(t, publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": key, "n": 0})))
			}
			require.Eventually(t, func() bool { return p.total.Load() == 20 }, 20*time.Second, 10*time.Millisecond, "every event handled all the same")
			require.NotZero(t, misplaced, "the test's keys must include misplaced ones")
			assert.Equal(t, uint64(misplaced), r.Health(ctxT(t)).Partitioned[0].Misplaced)
			require.NoError(t, stop())
		})
	}
}

func TestRouter_partitioned_group_refuses_filters_it_cannot_partition(t *testing.T) {
	tests := []struct {
		name   string
		filter string
	}{
		{"a filter that also matches the partitions' subjects", "auth.>"},
		{"a filter outside the spec's subjects", "auth.session.>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemFixture(t)
			r := f.newRouter(t, suiteConfig())
			g := r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{tt.filter}, Partitions: byKey})
			assert.ErrorIs(t, g.Err(), envelope.ErrInvalidConfig)
		})
	}
}

func TestRouter_pausing_a_partitioned_group_pauses_every_partition(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			publish := f.partitionedPublish(t, byKey)
			p := newKeyProbe()
			r, stop := partitionedRouter(t, f, p)
			waitSpread(t, r)
			require.NoError(t, r.Pause(ctxT(t), "users", time.Now().Add(time.Hour)))
			const n = 24
			for k := range n {
				require.NoError(t, publish(ctxT(t), "auth.user.updated", userEvent("user.updated", map[string]any{"key": fmt.Sprintf("k%d", k), "n": 0})))
			}
			// Every event waits in its partition, none delivered.
			require.Eventually(t, func() bool {
				var pending uint64
				for u := range byKey.Count {
					pending += f.state(t, fmt.Sprintf("users-p%d", u)).Pending
				}
				return pending == n
			}, 20*time.Second, 10*time.Millisecond)
			h := r.Health(ctxT(t))
			assert.True(t, h.Ready, "paused is ready")
			for _, g := range h.Groups {
				assert.False(t, g.PausedUntil.IsZero(), "%s paused", g.Group)
			}
			assert.Zero(t, p.total.Load(), "nothing handled while paused")

			require.NoError(t, r.Resume(ctxT(t), "users"))
			require.Eventually(t, func() bool { return p.total.Load() == n }, 20*time.Second, 10*time.Millisecond)
			require.NoError(t, stop())
		})
	}
}
