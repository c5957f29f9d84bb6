package router_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

func TestRouter_handler_failing_twice_then_succeeding_is_called_three_times_with_growing_delays(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	// An AckWait far beyond the test's deadline: only the router's
	// NakWithDelay can explain the redeliveries.
	cfg.AckWait = 5 * time.Minute
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var c calls
	done := make(chan struct{})
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		if c.add(ev.ID) < 3 {
			return errors.New("database unavailable")
		}
		close(done)
		return nil
	})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"user_id": 1}))
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("handler called %d times, want 3", c.n())
	}
	e.waitSettled(t, "users")
	assert.Equal(t, 3, c.n(), "exactly three calls")
	at := c.times()
	// The schedule is 100ms then 200ms (no jitter): the broker may deliver
	// later, never earlier.
	assert.GreaterOrEqual(t, at[1].Sub(at[0]), 100*time.Millisecond)
	assert.GreaterOrEqual(t, at[2].Sub(at[1]), 200*time.Millisecond)
	assert.Empty(t, e.deadLetters(t), "nothing dead-lettered")
	assert.Equal(t, router.Stats{Handled: 1, Failed: 2, Retried: 2}, r.Stats())
}

func TestRouter_always_failing_handler_is_called_max_deliver_times_then_dead_lettered_once(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig()) // MaxDeliver 4
	require.NoError(t, err)
	var c calls
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		c.add(ev.ID)
		return errors.New("smtp down")
	})
	start(t, r)

	ev := userEvent("user.created", map[string]any{"user_id": 2})
	e.publish(t, "auth.user.created", ev)
	dl := e.waitDeadLetters(t, 1)
	e.waitSettled(t, "users")
	assert.Equal(t, 4, c.n(), "called exactly MaxDeliver times")
	require.Len(t, e.deadLetters(t), 1, "exactly one dead letter")

	m := dl[0]
	assert.Equal(t, "dlq.auth.user.created", m.Subject)
	assert.Equal(t, "auth.user.created", header(m, middleware.HeaderSubject))
	assert.Equal(t, stream, header(m, middleware.HeaderStream))
	assert.Equal(t, "users", header(m, middleware.HeaderConsumer))
	assert.Equal(t, "1", header(m, middleware.HeaderStreamSeq))
	assert.Equal(t, "4", header(m, middleware.HeaderDeliveries))
	assert.Equal(t, "users", header(m, middleware.HeaderHandler))
	assert.Equal(t, middleware.ReasonMaxDeliver, header(m, middleware.HeaderReason))
	assert.Contains(t, header(m, middleware.HeaderError), "smtp down")
	_, err = time.Parse(time.RFC3339Nano, header(m, middleware.HeaderTime))
	assert.NoError(t, err, "dead-letter time is RFC 3339")
	// The original message travels unchanged: payload and ce-* headers.
	assert.Equal(t, ev.ID, header(m, "ce-id"))
	got, err := envelope.Decode(m.Data, 0)
	require.NoError(t, err)
	assert.Equal(t, ev.ID, got.ID)
	assert.JSONEq(t, string(ev.Data), string(got.Data))
}

func TestRouter_permanent_error_is_dead_lettered_after_one_call(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	var c calls
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		c.add(ev.ID)
		return middleware.Permanent(errors.New("email is not valid"))
	})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"email": "nope"}))
	dl := e.waitDeadLetters(t, 1)
	e.waitSettled(t, "users")
	assert.Equal(t, 1, c.n())
	assert.Equal(t, middleware.ReasonPermanent, header(dl[0], middleware.HeaderReason))
	assert.Equal(t, "1", header(dl[0], middleware.HeaderDeliveries))
	assert.Contains(t, header(dl[0], middleware.HeaderError), "email is not valid")
}

func TestRouter_malformed_payload_is_dead_lettered_and_later_events_are_handled(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	handled := make(chan string, 4)
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		handled <- ev.ID
		return nil
	})
	start(t, r)

	_, err = e.srv.JS.PublishMsg(ctxT(t), &nats.Msg{Subject: "auth.user.created", Data: []byte(`{"id":"x","type":`)})
	require.NoError(t, err)
	next := userEvent("user.created", nil)
	e.publish(t, "auth.user.created", next)

	select {
	case id := <-handled:
		assert.Equal(t, next.ID, id)
	case <-time.After(20 * time.Second):
		t.Fatal("the event after the malformed one was not handled")
	}
	dl := e.waitDeadLetters(t, 1)
	assert.Equal(t, middleware.ReasonUnmarshal, header(dl[0], middleware.HeaderReason))
	assert.NotEmpty(t, header(dl[0], middleware.HeaderError))
	assert.Equal(t, `{"id":"x","type":`, string(dl[0].Data), "the original payload, unchanged")
	e.waitSettled(t, "users")
}

type roleUpdated struct {
	UserID  int64  `json:"user_id"`
	NewRole string `json:"new_role"`
}

func TestRouter_routes_by_type_to_typed_handlers_and_checks_schema_majors(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	cfg.UnknownType = router.UnknownTypeAck
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	roles := make(chan roleUpdated, 1)
	created := make(chan string, 2)
	// auth.user.> rather than auth.user.*: '*' matches one token, and
	// user.role.updated is published on auth.user.role.updated.
	g := r.Group("users", "auth.user.>")
	router.Handle(g, "user.role.updated", func(ctx context.Context, ev *envelope.Event, d roleUpdated) error {
		roles <- d
		return nil
	})
	g.On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		created <- ev.SchemaVersion
		return nil
	}, router.AcceptMajors(1, 2))
	start(t, r)

	e.publish(t, "auth.user.role.updated", userEvent("user.role.updated", map[string]any{"user_id": int64(9007199254740993), "new_role": "admin"}))
	select {
	case d := <-roles:
		assert.Equal(t, roleUpdated{UserID: 9007199254740993, NewRole: "admin"}, d, "ints decode exactly")
	case <-time.After(20 * time.Second):
		t.Fatal("typed handler not called")
	}

	v2 := userEvent("user.created", nil)
	v2.SchemaVersion = "2.1"
	e.publish(t, "auth.user.created", v2)
	select {
	case v := <-created:
		assert.Equal(t, "2.1", v, "a handler accepting major 2 gets 2.x")
	case <-time.After(20 * time.Second):
		t.Fatal("v2 event not handled")
	}

	v3 := userEvent("user.created", nil)
	v3.SchemaVersion = "3.0"
	e.publish(t, "auth.user.created", v3)
	badData := userEvent("user.role.updated", map[string]any{"user_id": "not a number"})
	e.publish(t, "auth.user.role.updated", badData)
	unknown := userEvent("user.logged_in", nil)
	e.publish(t, "auth.user.logged_in", unknown)

	dl := e.waitDeadLetters(t, 2)
	reasons := map[string]string{}
	for _, m := range dl {
		reasons[header(m, "ce-id")] = header(m, middleware.HeaderReason)
	}
	assert.Equal(t, map[string]string{
		v3.ID:      middleware.ReasonSchemaVersion,
		badData.ID: middleware.ReasonUnmarshal,
	}, reasons)
	e.waitSettled(t, "users")
	assert.Equal(t, uint64(1), r.Stats().UnknownType, "unknown type acked and counted")
}

func TestRouter_unknown_type_can_be_dead_lettered(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	cfg.UnknownType = router.UnknownTypeDeadLetter
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	start(t, r)

	e.publish(t, "auth.user.logged_in", userEvent("user.logged_in", nil))
	dl := e.waitDeadLetters(t, 1)
	assert.Equal(t, middleware.ReasonUnknownType, header(dl[0], middleware.HeaderReason))
}

func TestRouter_correlation_flows_across_two_hops(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	type seen struct{ corr, cause string }
	aSeen := make(chan seen, 1)
	bSeen := make(chan seen, 1)
	var aID string
	g := r.Group("users", "auth.user.*")
	g.On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		aSeen <- seen{envelope.CorrelationID(ctx), envelope.CausationID(ctx)}
		// Hop two: publish with the handler's context.
		return e.pub.Publish(ctx, "auth.user.welcomed", userEvent("user.welcomed", nil))
	})
	g.On("user.welcomed", func(ctx context.Context, ev *envelope.Event) error {
		d, ok := router.DeliveryFrom(ctx)
		assert.True(t, ok)
		assert.Equal(t, "auth.user.welcomed", d.Subject)
		assert.Equal(t, uint64(1), d.Attempt)
		bSeen <- seen{d.CorrelationID, d.CausedBy}
		return nil
	})
	start(t, r)

	a := userEvent("user.created", nil)
	aID = a.ID
	require.NoError(t, e.pub.Publish(envelope.WithCorrelationID(ctxT(t), "request-42"), "auth.user.created", a))

	var sa, sb seen
	for _, ch := range []struct {
		c   chan seen
		dst *seen
	}{{aSeen, &sa}, {bSeen, &sb}} {
		select {
		case *ch.dst = <-ch.c:
		case <-time.After(20 * time.Second):
			t.Fatal("handler not called")
		}
	}
	assert.Equal(t, seen{"request-42", aID}, sa, "A sees the publisher's correlation id, causation = itself")
	assert.Equal(t, "request-42", sb.corr, "B sees A's correlation id")
	assert.Equal(t, aID, sb.cause, "B's causation id is A's event id")
}

func TestRouter_config_errors_are_typed(t *testing.T) {
	e := newEnv(t)
	_, err := router.New(e.srv.Conn, router.Config{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "no stream")
	_, err = router.New(nil, fastConfig())
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "no connection")

	tests := []struct {
		name  string
		build func(r *router.Router)
	}{
		{"no group", func(r *router.Router) {}},
		{"group without handlers", func(r *router.Router) { r.Group("g", "auth.>") }},
		{"group without durable", func(r *router.Router) {
			r.Group("", "auth.>").On("a.b", func(context.Context, *envelope.Event) error { return nil })
		}},
		{"group without subjects", func(r *router.Router) {
			r.Group("g").On("a.b", func(context.Context, *envelope.Event) error { return nil })
		}},
		{"invalid type", func(r *router.Router) {
			r.Group("g", "auth.>").On("user created", func(context.Context, *envelope.Event) error { return nil })
		}},
		{"type twice", func(r *router.Router) {
			h := func(context.Context, *envelope.Event) error { return nil }
			r.Group("g", "auth.>").On("a.b", h).On("a.b", h)
		}},
		{"two groups, one durable", func(r *router.Router) {
			h := func(context.Context, *envelope.Event) error { return nil }
			r.Group("g", "auth.>").On("a.b", h)
			r.Group("g", "auth.>").On("a.c", h)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := router.New(e.srv.Conn, fastConfig())
			require.NoError(t, err)
			tt.build(r)
			assert.ErrorIs(t, r.Run(ctxT(t)), envelope.ErrInvalidConfig)
		})
	}
}

func TestRouter_runs_once(t *testing.T) {
	e := newEnv(t)
	r, err := router.New(e.srv.Conn, fastConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	stop := start(t, r)
	assert.ErrorIs(t, r.Run(ctxT(t)), router.ErrRunning)
	require.NoError(t, stop())
	assert.True(t, e.srv.Conn.IsConnected(), "the router never closes the caller's connection")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestRouter_observe_reports_every_delivery_outcome(t *testing.T) {
	e := newEnv(t)
	cfg := fastConfig()
	var mu sync.Mutex
	var got []router.Outcome
	cfg.Observe = func(o router.Outcome) {
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	}
	r, err := router.New(e.srv.Conn, cfg)
	require.NoError(t, err)
	var flaky calls
	g := r.Group("users", "auth.user.>")
	g.On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		if flaky.add(ev.ID) == 1 {
			return errors.New("transient")
		}
		return nil
	})
	g.On("user.deleted", func(ctx context.Context, ev *envelope.Event) error {
		return middleware.Permanent(errors.New("cannot delete"))
	})
	start(t, r)

	e.publish(t, "auth.user.created", userEvent("user.created", nil))
	e.publish(t, "auth.user.deleted", userEvent("user.deleted", nil))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 }, 20*time.Second, 10*time.Millisecond)
	e.waitSettled(t, "users")

	mu.Lock()
	defer mu.Unlock()
	summary := map[string]int{}
	for _, o := range got {
		assert.Equal(t, "users", o.Group)
		summary[o.Type+"/"+o.Result.String()+"/"+o.Reason+"/"+itoa(int(o.Attempt))]++
	}
	assert.Equal(t, map[string]int{
		"user.created/retried//1":                1,
		"user.created/handled//2":                1,
		"user.deleted/dead_lettered/permanent/1": 1,
	}, summary)
}
