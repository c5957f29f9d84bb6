package router_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// groupHealth is the health of the router's one group.
func groupHealth(t *testing.T, r *router.Router) (router.Health, router.GroupHealth) {
	t.Helper()
	h := r.Health(ctxT(t))
	require.Len(t, h.Groups, 1)
	return h, h.Groups[0]
}

// The proof, on both transports: a group paused for eight
// heartbeats receives nothing meanwhile (events published while it is
// paused wait in the durable, its pulls keep being answered), is ready,
// active and paused in Health all along, never stalls nor recreates its
// durable, and gets every event after the deadline without anyone calling
// Resume.
func TestRouter_pause_delivers_nothing_until_the_deadline_then_resumes_by_itself(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			var logs logLines
			cfg := suiteConfig()
			cfg.Heartbeat = liveHeartbeat
			cfg.Logger = middleware.NewSlogLogger(logs.logger())
			r := f.newRouter(t, cfg)
			rec := newRecorder()
			r.Group("users", "auth.user.>").On("user.created", func(ctx context.Context, e *envelope.Event) error {
				rec.add(ctx, e)
				return nil
			})
			start(t, r)
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("before", "user.created", nil)))
			rec.wait(t, 1)
			waitIdle(t, f, "users")
			created := durableCreated(t, f)

			until := time.Now().Add(8 * liveHeartbeat)
			require.NoError(t, r.Pause(ctxT(t), "users", until))
			const n = 5
			for i := range n {
				require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("paused-"+string(rune('a'+i)), "user.created", nil)))
			}
			// Watch the whole pause: every look finds the events waiting in
			// the durable, none delivered, the group ready, active and
			// paused until the deadline.
			looks := 0
			poll := time.NewTicker(20 * time.Millisecond)
			defer poll.Stop()
			for {
				h, g := groupHealth(t, r)
				st := f.state(t, "users")
				if !time.Now().Before(until) {
					break
				}
				looks++
				require.True(t, h.Ready, "a paused group is ready: %+v", g)
				require.Equal(t, transport.StateActive, g.State, "a paused group is active, not stalled: %v", g.Cause)
				require.NoError(t, g.InfoErr)
				// JetStream stores the pause in UTC; the instant is the same.
				require.True(t, until.Equal(g.PausedUntil), "paused until %s, health says %s", until, g.PausedUntil)
				require.Zero(t, st.AckPending, "nothing delivered while paused")
				rec.mu.Lock()
				calls := len(rec.calls)
				rec.mu.Unlock()
				require.Equal(t, 1, calls, "nothing handled while paused")
				<-poll.C
			}
			require.Greater(t, looks, 10, "the pause was watched")

			calls := rec.wait(t, 1+n)
			_, at := rec.snapshot()
			for i, c := range calls[1:] {
				assert.False(t, at[i+1].Before(until), "%s handled %s before the pause ended", c.ID, until.Sub(at[i+1]))
			}
			t.Logf("first event handled %s after the deadline, last %s", at[1].Sub(until), at[n].Sub(until))
			waitIdle(t, f, "users")
			h, g := groupHealth(t, r)
			assert.True(t, h.Ready)
			assert.True(t, g.PausedUntil.IsZero(), "no longer paused: %s", g.PausedUntil)
			assert.Zero(t, g.Stalls, "a pause of 8 heartbeats is no stall")
			assert.Equal(t, created, durableCreated(t, f), "the durable was not recreated")
			assert.Empty(t, logs.atLevel(t, "WARN"), "no stall, no recovery, no durable change")
			assert.Len(t, logs.find(t, "Group paused: nothing is delivered to it until then, when it resumes by itself"), 1)
		})
	}
}

// durableCreated is when the JetStream durable "users" was created (zero on
// the bus, whose durables are only recreated by DeleteConsumer).
func durableCreated(t *testing.T, f fixture) time.Time {
	t.Helper()
	js, ok := f.(jsFixture)
	if !ok {
		return time.Time{}
	}
	c, err := js.e.srv.JS.Consumer(ctxT(t), stream, "users")
	require.NoError(t, err)
	return c.CachedInfo().Created
}

func TestRouter_resume_delivers_at_once(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			r := f.newRouter(t, suiteConfig())
			rec := newRecorder()
			r.Group("users", "auth.user.>").On("user.created", func(ctx context.Context, e *envelope.Event) error {
				rec.add(ctx, e)
				return nil
			})
			start(t, r)
			until := time.Now().Add(time.Hour)
			require.NoError(t, r.Pause(ctxT(t), "users", until))
			require.NoError(t, r.Pause(ctxT(t), "users", until.Add(time.Hour)), "pausing again moves the deadline")
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("e1", "user.created", nil)))
			require.Eventually(t, func() bool { return f.state(t, "users").Pending == 1 }, 10*time.Second, 10*time.Millisecond)
			_, g := groupHealth(t, r)
			assert.True(t, until.Add(time.Hour).Equal(g.PausedUntil), "paused until %s", g.PausedUntil)

			require.NoError(t, r.Resume(ctxT(t), "users"))
			assert.Equal(t, "e1", rec.wait(t, 1)[0].ID)
			_, g = groupHealth(t, r)
			assert.True(t, g.PausedUntil.IsZero())
			require.NoError(t, r.Resume(ctxT(t), "users"), "resuming a group that is not paused changes nothing")
		})
	}
}

// A pause is the durable's: a router that starts again, with settings that
// change the durable, finds it paused and receives nothing.
func TestRouter_pause_survives_a_restart_that_updates_the_durable(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			rec := newRecorder()
			build := func(ackWait time.Duration) *router.Router {
				cfg := suiteConfig()
				cfg.AckWait = ackWait
				r := f.newRouter(t, cfg)
				r.Group("users", "auth.user.>").On("user.created", func(ctx context.Context, e *envelope.Event) error {
					rec.add(ctx, e)
					return nil
				})
				return r
			}
			r := build(2 * time.Second)
			stop := start(t, r)
			until := time.Now().Add(time.Hour)
			require.NoError(t, r.Pause(ctxT(t), "users", until))
			require.NoError(t, stop())

			r = build(3 * time.Second)
			start(t, r)
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("e1", "user.created", nil)))
			require.Eventually(t, func() bool { return f.state(t, "users").Pending == 1 }, 10*time.Second, 10*time.Millisecond)
			_, g := groupHealth(t, r)
			assert.True(t, until.Equal(g.PausedUntil), "still paused after the restart: %s", g.PausedUntil)
			assert.Zero(t, f.state(t, "users").AckPending)
			calls, _ := rec.snapshot()
			assert.Empty(t, calls)

			require.NoError(t, r.Resume(ctxT(t), "users"))
			rec.wait(t, 1)
		})
	}
}

// noPauser is a transport that cannot pause.
type noPauser struct{ transport.Transport }

func TestRouter_pause_refusals(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			r := f.newRouter(t, suiteConfig())
			r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })
			r.Group("audit", "auth.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })

			err := r.Pause(ctxT(t), "users", time.Now().Add(time.Hour))
			require.ErrorIs(t, err, transport.ErrNoConsumer, "before the first Run the durable does not exist")
			assert.ErrorIs(t, r.Resume(ctxT(t), "users"), transport.ErrNoConsumer)

			err = r.Pause(ctxT(t), "nobody", time.Now().Add(time.Hour))
			require.ErrorIs(t, err, router.ErrUnknownGroup)
			assert.Contains(t, err.Error(), `pause "nobody" on stream AUTH_EVENTS (the router's groups: audit, users)`)
			assert.ErrorIs(t, r.Resume(ctxT(t), "nobody"), router.ErrUnknownGroup)

			start(t, r)
			err = r.Pause(ctxT(t), "users", time.Now().Add(-time.Second))
			require.ErrorIs(t, err, envelope.ErrInvalidConfig, "a pause that would end at once is refused")
			assert.Contains(t, err.Error(), "is not")
			for _, g := range r.Health(ctxT(t)).Groups {
				assert.True(t, g.PausedUntil.IsZero(), "%s not paused", g.Group)
			}

			p := r.StreamPauser()
			assert.ErrorIs(t, p.Pause(ctxT(t), "OTHER", "users", time.Now().Add(time.Hour)), router.ErrUnknownGroup)
			until := time.Now().Add(time.Hour)
			require.NoError(t, p.Pause(ctxT(t), stream, "audit", until))
			for _, g := range r.Health(ctxT(t)).Groups {
				if g.Group == "audit" {
					assert.True(t, until.Equal(g.PausedUntil))
				} else {
					assert.True(t, g.PausedUntil.IsZero(), "only the group asked for is paused")
				}
			}
			require.NoError(t, p.Resume(ctxT(t), stream, "audit"))
		})
	}
	t.Run("a transport that cannot pause", func(t *testing.T) {
		f := newMemFixture(t)
		r, err := router.NewWithTransport(noPauser{f.bus}, suiteConfig())
		require.NoError(t, err)
		r.Group("users", "auth.user.>")
		err = r.Pause(ctxT(t), "users", time.Now().Add(time.Hour))
		require.ErrorIs(t, err, transport.ErrUnsupported)
		assert.Contains(t, err.Error(), "cannot pause")
		assert.ErrorIs(t, r.Resume(ctxT(t), "users"), transport.ErrUnsupported)
	})
}
