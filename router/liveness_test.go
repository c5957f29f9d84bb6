package router_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// liveHeartbeat keeps the stall detection of these tests quick: a dead pull
// is noticed after two of them.
const liveHeartbeat = 250 * time.Millisecond

// seen counts the events a handler saw, by id.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
	ch  chan string
}

func newSeen() *seen { return &seen{ids: map[string]int{}, ch: make(chan string, 1024)} }

func (s *seen) on(_ context.Context, e *envelope.Event) error {
	s.mu.Lock()
	s.ids[e.ID]++
	s.mu.Unlock()
	s.ch <- e.ID
	return nil
}

func (s *seen) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// waitFor waits for the handler to see id.
func (s *seen) waitFor(t *testing.T, id string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		select {
		case got := <-s.ch:
			if got == id {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("event %s not handled within %s", id, within)
		}
	}
}

func liveConfig() router.Config {
	cfg := fastConfig()
	cfg.Heartbeat = liveHeartbeat
	return cfg
}

// publishEventually publishes ev, retrying while JetStream is coming back.
func (e *env) publishEventually(t *testing.T, subject string, ev *envelope.Event) {
	t.Helper()
	var err error
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = e.pub.Publish(ctx, subject, ev)
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "publish: %v", err)
}

func TestRouter_resumes_by_itself_when_JetStream_is_disabled_and_re_enabled_under_a_live_connection(t *testing.T) {
	e := newEnv(t)
	s := newSeen()
	r, err := router.New(e.srv.Conn, liveConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", s.on)
	start(t, r)

	first := userEvent("user.created", map[string]any{"n": 1})
	e.publish(t, "auth.user.created", first)
	s.waitFor(t, first.ID, 10*time.Second)

	// The server forgets every pull request; the connection stays up, so
	// nothing but the missing heartbeats tells the consumer.
	ns := e.srv.NATS()
	jsCfg := *ns.JetStreamConfig()
	jsCfg.StoreDir = filepath.Dir(jsCfg.StoreDir) // EnableJetStream appends "jetstream" again
	require.NoError(t, ns.DisableJetStream())
	require.NoError(t, ns.EnableJetStream(&jsCfg))
	require.True(t, e.srv.Conn.IsConnected(), "the client connection never dropped")

	second := userEvent("user.created", map[string]any{"n": 2})
	e.publishEventually(t, "auth.user.created", second)
	took := s.waitFor(t, second.ID, 30*time.Second)
	t.Logf("handled %s after the restart of JetStream (heartbeat %s)", took, liveHeartbeat)

	h := r.Health(ctxT(t))
	require.Len(t, h.Groups, 1)
	assert.GreaterOrEqual(t, h.Groups[0].Stalls, uint64(1), "the stall was detected from the missing heartbeats")
	require.Eventually(t, func() bool { return r.Health(ctxT(t)).Ready }, 10*time.Second, 20*time.Millisecond, "ready again")
	assert.Equal(t, 1, s.count(first.ID))
	assert.Equal(t, 1, s.count(second.ID))
}

func TestRouter_recreates_a_deleted_durable_from_the_group_config_and_resumes(t *testing.T) {
	e := newEnv(t)
	s := newSeen()
	r, err := router.New(e.srv.Conn, liveConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", s.on)
	start(t, r)

	require.NoError(t, e.srv.JS.DeleteConsumer(ctxT(t), stream, "users"))
	ev := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", ev)
	s.waitFor(t, ev.ID, 20*time.Second)

	c, err := e.srv.JS.Consumer(ctxT(t), stream, "users")
	require.NoError(t, err, "the durable exists again")
	assert.Equal(t, "auth.user.>", c.CachedInfo().Config.FilterSubject)
	assert.Equal(t, -1, c.CachedInfo().Config.MaxDeliver, "the server never gives up: the router enforces MaxDeliver")
}

func TestRouter_resumes_on_a_stream_recreated_empty(t *testing.T) {
	e := newEnv(t)
	s := newSeen()
	r, err := router.New(e.srv.Conn, liveConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", s.on)
	start(t, r)

	require.NoError(t, e.srv.JS.DeleteStream(ctxT(t), stream))
	_, err = jetstream.Apply(ctxT(t), e.srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	ev := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", ev)
	s.waitFor(t, ev.ID, 20*time.Second)
}

func TestRouter_run_ends_at_once_naming_the_group_when_its_stream_is_gone_for_good(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, liveConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", newSeen().on)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	<-r.Running()

	require.NoError(t, e.srv.JS.DeleteStream(ctxT(t), stream))
	select {
	case err := <-done:
		require.ErrorIs(t, err, router.ErrSubscriptionEnded)
		require.ErrorIs(t, err, transport.ErrNoStream)
		assert.Contains(t, err.Error(), "group users")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end")
	}
}

func TestRouter_start_without_its_stream_fails_at_once_with_the_setup_hint(t *testing.T) {
	srv := newEnv(t).srv
	cfg := liveConfig()
	cfg.Stream = "NOPE"
	cfg.CloseTimeout = time.Hour // must not be waited for
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", newSeen().on)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, transport.ErrNoStream)
		assert.Contains(t, err.Error(), "setup-nats-streams.sh")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not report the missing stream")
	}
}

func TestRouter_long_handler_with_events_queued_behind_it_handles_each_exactly_once(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		routers     int
	}{
		{"concurrency 1", 1, 1},
		{"concurrency 2", 2, 1},
		{"two routers on one durable", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := liveConfig()
			cfg.AckWait = 600 * time.Millisecond // the queue waits for several AckWaits
			cfg.Concurrency = tt.concurrency
			cfg.FetchBatch = 8
			var mu sync.Mutex
			calls := map[string]int{}
			attempts := map[string]uint64{}
			handler := func(ctx context.Context, ev *envelope.Event) error {
				d, _ := router.DeliveryFrom(ctx)
				mu.Lock()
				calls[ev.ID]++
				attempts[ev.ID] = max(attempts[ev.ID], d.Attempt)
				mu.Unlock()
				// Work that outlasts AckWait three times over.
				time.Sleep(2 * time.Second)
				return nil
			}
			for range tt.routers {
				r, err := router.New(e.srv.Connect(t), cfg)
				require.NoError(t, err)
				r.Group("slow", "auth.user.>").On("user.created", handler)
				start(t, r)
			}
			const n = 4
			for range n {
				e.publish(t, "auth.user.created", userEvent("user.created", nil))
			}
			require.Eventually(t, func() bool {
				c, err := e.srv.JS.Consumer(ctxT(t), stream, "slow")
				if err != nil {
					return false
				}
				info := c.CachedInfo()
				return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == n
			}, 60*time.Second, 50*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, calls, n)
			for id, c := range calls {
				assert.Equal(t, 1, c, "event %s handled once", id)
				assert.Equal(t, uint64(1), attempts[id], "event %s never redelivered", id)
			}
		})
	}
}

func TestRouter_every_poisoned_event_ends_in_the_DLQ_after_it_was_missing_then_full_for_longer_than_the_retry_window(t *testing.T) {
	srv := newEnv(t).srv
	// Start without the dead-letter stream.
	require.NoError(t, srv.JS.DeleteStream(ctxT(t), dlqStream))
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	e := &env{srv: srv, pub: pub}

	cfg := liveConfig()
	cfg.MaxDeliver = 2
	cfg.DeadLetter.RetryBackoff = transport.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: -1}
	var mu sync.Mutex
	calls := map[string]int{}
	attempt := map[string]uint64{}
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.>").
		On("user.deleted", func(ctx context.Context, ev *envelope.Event) error {
			mu.Lock()
			calls[ev.ID]++
			mu.Unlock()
			return middleware.Permanent(errors.New("cannot delete"))
		}).
		On("user.created", func(ctx context.Context, ev *envelope.Event) error {
			d, _ := router.DeliveryFrom(ctx)
			mu.Lock()
			calls[ev.ID]++
			attempt[ev.ID] = d.Attempt
			mu.Unlock()
			return errors.New("always fails")
		})
	start(t, r)

	perm := userEvent("user.deleted", nil)
	failing := userEvent("user.created", nil)
	e.publish(t, "auth.user.deleted", perm)
	e.publish(t, "auth.user.created", failing)

	// Far past the retry window: the failing event's deliveries go well
	// beyond MaxDeliver while the DLQ is missing.
	redelivered := func(min int) func() bool {
		return func() bool {
			c, err := srv.JS.Consumer(ctxT(t), stream, "users")
			if err != nil {
				return false
			}
			info, err := c.Info(ctxT(t))
			return err == nil && info.Delivered.Consumer >= uint64(min)
		}
	}
	require.Eventually(t, redelivered(12), 20*time.Second, 20*time.Millisecond)

	// Then full: it exists but refuses new messages.
	_, err = srv.JS.CreateStream(ctxT(t), natsjs.StreamConfig{Name: dlqStream, Subjects: []string{"dlq.>"}, MaxMsgs: 1, Discard: natsjs.DiscardNew})
	require.NoError(t, err)
	_, err = srv.JS.Publish(ctxT(t), "dlq.filler", []byte("x"))
	require.NoError(t, err)
	require.Eventually(t, redelivered(24), 20*time.Second, 20*time.Millisecond)
	assert.Len(t, e.deadLetters(t), 1, "only the filler while the DLQ is full")

	// Fixed.
	_, err = srv.JS.UpdateStream(ctxT(t), natsjs.StreamConfig{Name: dlqStream, Subjects: []string{"dlq.>"}, MaxMsgs: -1})
	require.NoError(t, err)
	dl := e.waitDeadLetters(t, 3)
	e.waitSettled(t, "users")
	byID := map[string]string{}
	for _, m := range dl[1:] {
		byID[header(m, "ce-id")] = header(m, "Dlq-Reason")
	}
	assert.Equal(t, map[string]string{perm.ID: "permanent", failing.ID: "max_deliver"}, byID, "both poisoned events are dead-lettered, none stranded")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, calls[perm.ID], "a verdict is never re-run: the permanent failure was handled once")
	assert.Equal(t, 2, calls[failing.ID], "MaxDeliver handler attempts, not one more")
}

func TestRouter_event_near_1MiB_that_fails_ends_in_the_DLQ_truncated_with_its_origin(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, liveConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error {
		return middleware.Permanent(errors.New("refused"))
	})
	start(t, r)

	// As large as the publisher accepts: the dead-letter headers push it
	// over the server's max payload.
	limit := int(e.srv.Conn.MaxPayload())
	big := make([]byte, 0, limit)
	for len(big) < limit-700 {
		big = append(big, "abcdefghijklmnopqrstuvwxyz0123456789"...)
	}
	ev := userEvent("user.created", map[string]any{"blob": string(big)})
	e.publish(t, "auth.user.created", ev)

	dl := e.waitDeadLetters(t, 1)
	e.waitSettled(t, "users")
	assert.Equal(t, "permanent", header(dl[0], middleware.HeaderReason))
	assert.Equal(t, ev.ID, header(dl[0], "ce-id"))
	assert.NotEmpty(t, header(dl[0], middleware.HeaderTruncated), "the payload was cut to fit")
	assert.Equal(t, stream, header(dl[0], middleware.HeaderStream))
	assert.Equal(t, "1", header(dl[0], middleware.HeaderStreamSeq), "the original can be fetched from its stream")
	orig, err := e.srv.JS.Stream(ctxT(t), stream)
	require.NoError(t, err)
	m, err := orig.GetMsg(ctxT(t), 1)
	require.NoError(t, err)
	assert.Greater(t, len(m.Data), len(dl[0].Data), "the original is intact in its stream")
}

func TestRouter_durable_deleted_out_of_band_is_recreated_after_its_ack_floor_not_at_the_start(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			rec := newRecorder()
			cfg := suiteConfig()
			cfg.Heartbeat = liveHeartbeat
			r := f.newRouter(t, cfg)
			r.Group("users", "auth.user.>").On("user.created", func(ctx context.Context, e *envelope.Event) error {
				rec.add(ctx, e)
				return nil
			})
			start(t, r)
			const before = 50
			for i := range before {
				require.NoError(t, f.publish(ctxT(t), "auth.user.created", userEvent("user.created", map[string]any{"i": i})))
			}
			rec.wait(t, before)
			waitIdle(t, f, "users")
			// A readiness probe reads the durable (its ack floor among the
			// rest), as a service's would.
			r.Health(ctxT(t))

			switch f := f.(type) {
			case jsFixture:
				require.NoError(t, f.e.srv.JS.DeleteConsumer(ctxT(t), stream, "users"))
			case memFixture:
				require.NoError(t, f.bus.DeleteConsumer(stream, "users"))
			}
			after := userEvent("user.created", map[string]any{"i": before})
			require.NoError(t, f.publish(ctxT(t), "auth.user.created", after))
			calls := rec.wait(t, before+1)
			waitIdle(t, f, "users")
			calls, _ = rec.snapshot()
			seen := map[string]int{}
			var again []string
			for i, c := range calls {
				if seen[c.ID]++; seen[c.ID] > 1 {
					again = append(again, fmt.Sprintf("#%d %s attempt %d", i, c.ID, c.Attempt))
				}
			}
			assert.Equal(t, before+1, len(calls), "the %d events settled before the deletion are not handled again; handled again: %v", before, again)
			assert.Equal(t, after.ID, calls[len(calls)-1].ID)
		})
	}
}

func TestRouter_resumes_at_once_after_a_reconnect_to_a_restarted_server(t *testing.T) {
	e := newEnv(t)
	var logs logLines
	nc := e.srv.Connect(t)
	cfg := fastConfig()
	// Heartbeats far apart: recovering by them would take a minute, so a
	// prompt resume can only come from the reconnect.
	cfg.Heartbeat = 30 * time.Second
	cfg.Logger = middleware.NewSlogLogger(slog.New(connectedAt{slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}), nc}))
	r, err := router.New(nc, cfg)
	require.NoError(t, err)
	s := newSeen()
	r.Group("users", "auth.user.>").On("user.created", s.on)
	start(t, r)
	first := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", first)
	s.waitFor(t, first.ID, 10*time.Second)

	reconnected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(reconnected)
	require.NoError(t, e.srv.Restart())
	select {
	case <-reconnected:
	case <-time.After(20 * time.Second):
		t.Fatal("no reconnect")
	}
	back := time.Now()
	second := userEvent("user.created", nil)
	e.publishEventually(t, "auth.user.created", second)
	s.waitFor(t, second.ID, 20*time.Second)
	took := time.Since(back)
	t.Logf("first event handled %s after the reconnect (heartbeat %s)", took.Round(time.Millisecond), cfg.Heartbeat)
	assert.Less(t, took, cfg.Heartbeat, "resumed by the reconnect, not by the missing heartbeats")
	for _, l := range logs.find(t, "Consumer recovered, pulling again") {
		assert.Equal(t, true, l["connected"], "no recovery is reported while disconnected: %v", l)
	}
}

// connectedAt adds to each log record whether nc was connected when it was
// written.
type connectedAt struct {
	slog.Handler
	nc *nats.Conn
}

func (h connectedAt) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.Bool("connected", h.nc.IsConnected()))
	return h.Handler.Handle(ctx, r)
}

func (h connectedAt) WithAttrs(as []slog.Attr) slog.Handler {
	return connectedAt{h.Handler.WithAttrs(as), h.nc}
}
