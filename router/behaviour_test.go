package router_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// The behaviour suite: one table of router behaviours, run against the
// embedded JetStream server and against the in-memory bus, each behaviour
// returning what it observed (handler calls, dead letters with every header,
// counters, Run's result) so that the two transports are compared outcome for
// outcome, not only each against its own assertions.
//
// What only JetStream can show is tested in the JetStream-only files: a
// process that crashes on every delivery (lifecycle_test.go: the attempt
// limit still dead-letters it), two processes sharing a durable
// (lifecycle_test.go), a server restart and JetStream disabled under a live
// connection, lost pulls and missed heartbeats (liveness_test.go), limits of
// the real max_payload (liveness_test.go). The bus has no process, no network
// and no server to lose.

// fixture is one transport under the router.
type fixture interface {
	// newRouter returns a router on the transport with cfg.
	newRouter(t *testing.T, cfg router.Config) *router.Router
	// publish publishes an event through the transport's events publisher.
	publish(ctx context.Context, subject string, e *envelope.Event) error
	// messagePublisher is the transport's Watermill publisher of events.
	messagePublisher(t *testing.T) message.Publisher
	// publishRaw stores a message as it is.
	publishRaw(t *testing.T, subject string, h nats.Header, data []byte)
	// deadLetters returns every message of the DLQ stream, in order.
	deadLetters(t *testing.T) []letter
	// state reads a durable's state (LastActive left out).
	state(t *testing.T, durable string) transport.ConsumerState
	// partitionedPublish returns a publish through a publisher of the
	// transport that places events by specs.
	partitionedPublish(t *testing.T, specs ...partition.Spec) func(ctx context.Context, subject string, e *envelope.Event) error
}

// letter is a stored dead letter.
type letter struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// jsFixture runs on an embedded JetStream server (AUTH_EVENTS on auth.>,
// DLQ on dlq.>).
type jsFixture struct{ e *env }

func (f jsFixture) newRouter(t *testing.T, cfg router.Config) *router.Router {
	r, err := router.New(f.e.srv.Conn, cfg)
	require.NoError(t, err)
	return r
}

func (f jsFixture) publish(ctx context.Context, subject string, e *envelope.Event) error {
	return f.e.pub.Publish(ctx, subject, e)
}

func (f jsFixture) messagePublisher(*testing.T) message.Publisher { return f.e.pub.MessagePublisher() }

func (f jsFixture) partitionedPublish(t *testing.T, specs ...partition.Spec) func(context.Context, string, *envelope.Event) error {
	pub, err := jetstream.NewPublisher(f.e.srv.Conn, jetstream.PublisherConfig{Partitions: specs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return func(ctx context.Context, subject string, e *envelope.Event) error {
		return pub.Publish(ctx, subject, e)
	}
}

func (f jsFixture) publishRaw(t *testing.T, subject string, h nats.Header, data []byte) {
	_, err := f.e.srv.JS.PublishMsg(ctxT(t), &nats.Msg{Subject: subject, Header: h, Data: data})
	require.NoError(t, err)
}

func (f jsFixture) deadLetters(t *testing.T) []letter {
	var out []letter
	for _, m := range f.e.deadLetters(t) {
		out = append(out, letter{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data})
	}
	return out
}

func (f jsFixture) state(t *testing.T, durable string) transport.ConsumerState {
	c, err := f.e.srv.JS.Consumer(ctxT(t), stream, durable)
	require.NoError(t, err)
	info, err := c.Info(ctxT(t))
	require.NoError(t, err)
	return transport.ConsumerState{Pending: info.NumPending, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered, Waiting: info.NumWaiting}
}

// memFixture runs on the in-memory bus with the same streams.
type memFixture struct {
	bus *memory.Bus
	pub *memory.Publisher
}

func newMemFixture(t *testing.T) memFixture {
	bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{
		{Name: stream, Subjects: []string{"auth.>"}},
		{Name: dlqStream, Subjects: []string{"dlq.>"}},
	}, MemberTTL: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	pub, err := memory.NewPublisher(bus, memory.PublisherConfig{})
	require.NoError(t, err)
	return memFixture{bus: bus, pub: pub}
}

func (f memFixture) newRouter(t *testing.T, cfg router.Config) *router.Router {
	r, err := router.NewWithTransport(f.bus, cfg)
	require.NoError(t, err)
	return r
}

func (f memFixture) publish(ctx context.Context, subject string, e *envelope.Event) error {
	return f.pub.Publish(ctx, subject, e)
}

func (f memFixture) partitionedPublish(t *testing.T, specs ...partition.Spec) func(context.Context, string, *envelope.Event) error {
	pub, err := memory.NewPublisher(f.bus, memory.PublisherConfig{Partitions: specs})
	require.NoError(t, err)
	return func(ctx context.Context, subject string, e *envelope.Event) error {
		return pub.Publish(ctx, subject, e)
	}
}

func (f memFixture) messagePublisher(t *testing.T) message.Publisher {
	mp, err := memory.NewMessagePublisher(f.bus, nil)
	require.NoError(t, err)
	return mp
}

func (f memFixture) publishRaw(t *testing.T, subject string, h nats.Header, data []byte) {
	_, err := f.bus.Publish(ctxT(t), subject, h, data)
	require.NoError(t, err)
}

func (f memFixture) deadLetters(*testing.T) []letter {
	var out []letter
	for _, m := range f.bus.Messages("dlq.>") {
		out = append(out, letter{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

func (f memFixture) state(t *testing.T, durable string) transport.ConsumerState {
	st, err := f.bus.ConsumerState(stream, durable)
	require.NoError(t, err)
	return transport.ConsumerState{Pending: st.Pending, AckPending: st.AckPending, Redelivered: st.Redelivered, Waiting: st.Waiting}
}

// fixtures are the transports every behaviour runs on.
var fixtures = []struct {
	name string
	make func(t *testing.T) fixture
}{
	{"jetstream", func(t *testing.T) fixture { return jsFixture{newEnv(t)} }},
	{"memory", func(t *testing.T) fixture { return newMemFixture(t) }},
}

// outcome is what a behaviour observed; it must be the same on every
// transport.
type outcome struct {
	Calls       []call
	DeadLetters []letter
	Stats       router.Stats
	Run         string // how Run ended, when the behaviour stops it
	State       transport.ConsumerState
}

// call is one handler invocation as the handler saw it.
type call struct {
	Type, ID      string
	Attempt       uint64
	Subject       string
	CorrelationID string
	CausedBy      string
}

// recorder records handler calls (handlers of several groups may record at
// once).
type recorder struct {
	mu    sync.Mutex
	calls []call
	at    []time.Time
	ch    chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1000)} }

func (r *recorder) add(ctx context.Context, e *envelope.Event) {
	d, _ := router.DeliveryFrom(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, call{Type: e.Type, ID: e.ID, Attempt: d.Attempt, Subject: d.Subject, CorrelationID: d.CorrelationID, CausedBy: d.CausedBy})
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	r.ch <- struct{}{}
}

// wait waits for n calls in all.
func (r *recorder) wait(t *testing.T, n int) []call {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.calls)
		r.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("%d handler calls, want %d", got, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) snapshot() ([]call, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.at)
}

// suiteConfig is fastConfig with dead letters stamped by a fixed clock, so
// that a dead letter's every header is the same on both transports.
func suiteConfig() router.Config {
	cfg := fastConfig()
	cfg.Clock = eventstest.NewClock(time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC))
	return cfg
}

// event returns an event with a fixed id (ids are compared across
// transports).
func event(id, typ string, data map[string]any) *envelope.Event {
	e := userEvent(typ, data)
	e.ID = id
	return e
}

func waitDead(t *testing.T, f fixture, n int) []letter {
	t.Helper()
	require.Eventually(t, func() bool { return len(f.deadLetters(t)) >= n }, 20*time.Second, 10*time.Millisecond, "waiting for %d dead letters", n)
	return f.deadLetters(t)
}

func waitIdle(t *testing.T, f fixture, durable string) transport.ConsumerState {
	t.Helper()
	var st transport.ConsumerState
	require.Eventually(t, func() bool {
		st = f.state(t, durable)
		return st.Pending == 0 && st.AckPending == 0
	}, 20*time.Second, 10*time.Millisecond, "durable %s not settled", durable)
	st.Waiting = 0 // pulls (or credit) outstanding: a detail of timing
	return st
}

// copyOf stores ev on auth.<type> as the publisher encodes it, but with
// Nats-Msg-Id msgID: another stream message carrying the same event.
func copyOf(t *testing.T, f fixture, ev *envelope.Event, msgID string) {
	t.Helper()
	msg, err := marshaler.Default().EventToNATS("auth."+ev.Type, ev, marshaler.Relations{})
	require.NoError(t, err)
	msg.Header.Set(nats.MsgIdHdr, msgID)
	f.publishRaw(t, msg.Subject, msg.Header, msg.Data)
}

func runErr(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, router.ErrShutdown):
		return "ErrShutdown"
	}
	return err.Error()
}

// behaviours is the table.
var behaviours = []struct {
	name string
	run  func(t *testing.T, f fixture) outcome
}{
	{"handled once and acked", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-handled", "user.created", map[string]any{"user_id": 1})))
		calls := rec.wait(t, 1)
		st := waitIdle(t, f, "users")
		assert.Equal(t, uint64(1), calls[0].Attempt)
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: f.deadLetters(t)}
	}},
	{"retried with growing delays, then handled", func(t *testing.T, f fixture) outcome {
		cfg := suiteConfig()
		cfg.AckWait = 5 * time.Minute // only the router's nak delays explain the redeliveries
		r := f.newRouter(t, cfg)
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			if d, _ := router.DeliveryFrom(ctx); d.Attempt < 3 {
				return errors.New("database unavailable")
			}
			return nil
		})
		start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-retried", "user.created", nil)))
		rec.wait(t, 3)
		st := waitIdle(t, f, "users")
		calls, at := rec.snapshot()
		// 100ms then 200ms (no jitter): never earlier.
		assert.GreaterOrEqual(t, at[1].Sub(at[0]), 100*time.Millisecond)
		assert.GreaterOrEqual(t, at[2].Sub(at[1]), 200*time.Millisecond)
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: f.deadLetters(t)}
	}},
	{"dead-lettered at MaxDeliver with every header", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig()) // MaxDeliver 4
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return errors.New("smtp down")
		})
		start(t, r)
		ev := event("evt-poison", "user.created", map[string]any{"user_id": 2})
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", ev))
		dl := waitDead(t, f, 1)
		st := waitIdle(t, f, "users")
		calls, _ := rec.snapshot()
		require.Len(t, calls, 4, "called exactly MaxDeliver times")
		require.Len(t, dl, 1)
		h := dl[0].Header
		assert.Equal(t, "dlq.auth.user.created", dl[0].Subject)
		for k, want := range map[string]string{
			middleware.HeaderSubject:                        "auth.user.created",
			middleware.HeaderStream:                         stream,
			middleware.HeaderConsumer:                       "users",
			middleware.HeaderStreamSeq:                      "1",
			middleware.HeaderDeliveries:                     "4",
			middleware.HeaderHandler:                        "users",
			middleware.HeaderReason:                         middleware.ReasonMaxDeliver,
			middleware.HeaderTime:                           "2024-01-15T12:00:00Z",
			middleware.HeaderOriginalPrefix + nats.MsgIdHdr: ev.ID,
			nats.MsgIdHdr:                                   "dlq:" + stream + ":users:1",
			"ce-id":                                         ev.ID,
		} {
			assert.Equal(t, want, h.Get(k), k)
		}
		assert.Contains(t, h.Get(middleware.HeaderError), "smtp down")
		got, err := envelope.Decode(dl[0].Data, 0)
		require.NoError(t, err)
		assert.Equal(t, ev.ID, got.ID, "the original travels unchanged")
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: dl}
	}},
	{"permanent error dead-lettered after one call", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return middleware.Permanent(errors.New("email is not valid"))
		})
		start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-permanent", "user.created", nil)))
		dl := waitDead(t, f, 1)
		st := waitIdle(t, f, "users")
		assert.Equal(t, middleware.ReasonPermanent, dl[0].Header.Get(middleware.HeaderReason))
		assert.Equal(t, "1", dl[0].Header.Get(middleware.HeaderDeliveries))
		calls, _ := rec.snapshot()
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: dl}
	}},
	{"undecodable message and undecodable data dead-lettered as unmarshal", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		g := r.Group("users", "auth.user.>")
		router.Handle(g, "user.role.updated", func(ctx context.Context, e *envelope.Event, d roleUpdated) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, r)
		f.publishRaw(t, "auth.user.created", nil, []byte("{not json"))
		require.NoError(t, f.publish(ctxT(t), "auth.user.role.updated", event("evt-bad-data", "user.role.updated", map[string]any{"user_id": "not a number"})))
		require.NoError(t, f.publish(ctxT(t), "auth.user.role.updated", event("evt-good", "user.role.updated", map[string]any{"user_id": 7, "new_role": "admin"})))
		dl := waitDead(t, f, 2)
		calls := rec.wait(t, 1)
		st := waitIdle(t, f, "users")
		for _, l := range dl {
			assert.Equal(t, middleware.ReasonUnmarshal, l.Header.Get(middleware.HeaderReason))
		}
		assert.Equal(t, "evt-good", calls[0].ID, "later events are handled")
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: dl}
	}},
	{"unknown type acked and counted", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.logged_in", event("evt-unknown", "user.logged_in", nil)))
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-known", "user.created", nil)))
		calls := rec.wait(t, 1)
		st := waitIdle(t, f, "users")
		assert.Equal(t, uint64(1), r.Stats().UnknownType)
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: f.deadLetters(t)}
	}},
	{"unknown type dead-lettered when configured so", func(t *testing.T, f fixture) outcome {
		cfg := suiteConfig()
		cfg.UnknownType = router.UnknownTypeDeadLetter
		r := f.newRouter(t, cfg)
		r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
		start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.logged_in", event("evt-unknown", "user.logged_in", nil)))
		dl := waitDead(t, f, 1)
		st := waitIdle(t, f, "users")
		assert.Equal(t, middleware.ReasonUnknownType, dl[0].Header.Get(middleware.HeaderReason))
		return outcome{Stats: r.Stats(), State: st, DeadLetters: dl}
	}},
	{"schema major not accepted dead-lettered without a call", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		g := r.Group("users", "auth.user.*")
		g.On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		g.On("user.deleted", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		}, router.AcceptMajors(1, 2))
		start(t, r)
		v2 := event("evt-v2", "user.created", nil)
		v2.SchemaVersion = "2.0"
		v2ok := event("evt-v2-accepted", "user.deleted", nil)
		v2ok.SchemaVersion = "2.3"
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", v2))
		require.NoError(t, f.publish(ctxT(t), "auth.user.deleted", v2ok))
		dl := waitDead(t, f, 1)
		calls := rec.wait(t, 1)
		st := waitIdle(t, f, "users")
		assert.Equal(t, middleware.ReasonSchemaVersion, dl[0].Header.Get(middleware.HeaderReason))
		assert.Equal(t, "evt-v2", dl[0].Header.Get("ce-id"))
		assert.Equal(t, "evt-v2-accepted", calls[0].ID, "a handler accepting major 2 gets 2.x")
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: dl}
	}},
	{"correlation and causation across two hops", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		r.Group("signup", "auth.user.created").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return f.publish(ctx, "auth.user.welcomed", event("evt-hop-1", "user.welcomed", nil))
		})
		r.Group("welcome", "auth.user.welcomed").On("user.welcomed", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return f.publish(ctx, "auth.user.activated", event("evt-hop-2", "user.activated", nil))
		})
		r.Group("activation", "auth.user.activated").On("user.activated", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, r)
		require.NoError(t, f.publish(envelope.WithCorrelationID(ctxT(t), "request-42"), "auth.user.created", event("evt-origin", "user.created", nil)))
		calls := rec.wait(t, 3)
		for _, g := range []string{"signup", "welcome", "activation"} {
			waitIdle(t, f, g)
		}
		assert.Equal(t, []call{
			{Type: "user.created", ID: "evt-origin", Attempt: 1, Subject: "auth.user.created", CorrelationID: "request-42"},
			{Type: "user.welcomed", ID: "evt-hop-1", Attempt: 1, Subject: "auth.user.welcomed", CorrelationID: "request-42", CausedBy: "evt-origin"},
			{Type: "user.activated", ID: "evt-hop-2", Attempt: 1, Subject: "auth.user.activated", CorrelationID: "request-42", CausedBy: "evt-hop-1"},
		}, calls)
		return outcome{Calls: calls, Stats: r.Stats()}
	}},
	{"the same event stored twice is handled once with idempotency", func(t *testing.T, f fixture) outcome {
		store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
		require.NoError(t, err)
		cfg := suiteConfig()
		cfg.Idempotency = store
		r := f.newRouter(t, cfg)
		rec := newRecorder()
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, r)
		ev := event("evt-twice", "user.created", nil)
		// Two stream messages carrying one event (a producer retry past the
		// stream's duplicates window): the second has another Nats-Msg-Id.
		copyOf(t, f, ev, "copy-1")
		copyOf(t, f, ev, "copy-2")
		rec.wait(t, 1)
		st := waitIdle(t, f, "users")
		calls, _ := rec.snapshot()
		assert.Len(t, calls, 1, "handled once")
		return outcome{Calls: calls, Stats: r.Stats(), State: st, DeadLetters: f.deadLetters(t)}
	}},
	{"shutdown waits for an in-flight handler and acks its event", func(t *testing.T, f fixture) outcome {
		r := f.newRouter(t, suiteConfig())
		rec := newRecorder()
		entered, release := make(chan struct{}), make(chan struct{})
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			close(entered)
			<-release
			return nil
		})
		stop := start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-inflight", "user.created", nil)))
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		// Shutdown has begun: the consumer takes no more (no pull request
		// waits, no credit left), yet Run waits for the handler.
		require.Eventually(t, func() bool { return f.state(t, "users").Waiting == 0 }, 20*time.Second, 10*time.Millisecond)
		select {
		case err := <-stopped:
			t.Fatalf("Run returned with a handler in flight: %v", err)
		default:
		}
		close(release)
		err := <-stopped
		st := waitIdle(t, f, "users")
		calls, _ := rec.snapshot()
		return outcome{Calls: calls, Stats: r.Stats(), Run: runErr(err), State: st}
	}},
	{"shutdown past CloseTimeout cancels the handler and nacks its event", func(t *testing.T, f fixture) outcome {
		cfg := suiteConfig()
		cfg.CloseTimeout = 300 * time.Millisecond
		r := f.newRouter(t, cfg)
		rec := newRecorder()
		entered := make(chan struct{})
		cause := make(chan error, 1)
		r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			close(entered)
			<-ctx.Done() // ignores the stop until its context is cut
			cause <- context.Cause(ctx)
			return ctx.Err()
		})
		stop := start(t, r)
		require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-slow", "user.created", nil)))
		<-entered
		err := stop()
		assert.ErrorIs(t, <-cause, transport.ErrCloseTimeout)

		// Nacked, never acked: the next router gets it again.
		next := f.newRouter(t, suiteConfig())
		next.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, e *envelope.Event) error {
			rec.add(ctx, e)
			return nil
		})
		start(t, next)
		calls := rec.wait(t, 2)
		st := waitIdle(t, f, "users")
		assert.Equal(t, uint64(2), calls[1].Attempt)
		return outcome{Calls: calls, Stats: next.Stats(), Run: runErr(err), State: st}
	}},
}

// TestRouter_behaviour_is_the_same_on_JetStream_and_on_the_memory_bus runs
// every behaviour on both transports and compares what each observed.
func TestRouter_behaviour_is_the_same_on_JetStream_and_on_the_memory_bus(t *testing.T) {
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			got := map[string]outcome{}
			for _, fx := range fixtures {
				t.Run(fx.name, func(t *testing.T) {
					got[fx.name] = b.run(t, fx.make(t))
				})
			}
			if t.Failed() {
				return
			}
			assert.Equal(t, got["jetstream"], got["memory"], "the memory bus must behave as JetStream")
		})
	}
}

// TestRouter_run_error_names_only_the_group_whose_consumer_ended proves the
// fixed defect "Run reports every group as ended when one group's
// subscription ends": one group's consumer ends for good (on the bus:
// EndConsumer, as JetStream's does when its permissions are withdrawn, which
// the embedded server cannot do to one durable alone); the other stops
// cleanly. Run's error names the first only.
func TestRouter_run_error_names_only_the_group_whose_consumer_ended(t *testing.T) {
	f := newMemFixture(t)
	r := f.newRouter(t, suiteConfig())
	r.Group("billing", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	r.Group("emails", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start")
	}
	require.NoError(t, f.bus.EndConsumer(stream, "emails", errors.New("permissions withdrawn")))
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after a group's consumer ended")
	}
	require.ErrorIs(t, err, router.ErrSubscriptionEnded)
	require.ErrorIs(t, err, transport.ErrConsumerEnded)
	assert.Contains(t, err.Error(), "group emails")
	assert.Contains(t, err.Error(), "permissions withdrawn")
	assert.NotContains(t, err.Error(), "billing", "the group that was stopped cleanly is not reported as ended")
}
