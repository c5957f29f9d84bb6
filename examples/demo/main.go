// Command demo shows jetevents end to end with nothing installed: it starts
// an embedded NATS server with JetStream, creates the AUTH_EVENTS and DLQ
// streams, runs a router consuming auth.user.>, publishes the seed's events
// (sync, async, batch), one event whose handler fails twice before it
// succeeds (retried by the broker on the backoff schedule), one event its
// handler refuses and one malformed message, and prints what happened to
// each: handled, retried, dead-lettered, undecodable. The counts it prints
// add up to what it published. Then the seed's CreateResource on its own
// SQLite database (outbox.go): a resource row and its event committed
// together, and a rolled-back one that never appears.
//
//	make demo        # or: go run ./examples/demo
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// UserCreated is the data of the seed's user.created event.
type UserCreated struct {
	UserID int    `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	srv, err := embedded.Start(embedded.Config{})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	say("1. embedded NATS server with JetStream at %s", srv.URL())

	logger := events.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	nc, err := events.Connect(srv.URL(), events.WithName("jetevents-demo"), jetstream.WithLogger(logger))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	// A service ensures the streams it needs exist: created when missing,
	// never changed when they do (their settings are the operator's:
	// jetevents streams apply).
	changes, err := jetstream.Ensure(ctx, js, logger, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	if err != nil {
		return err
	}
	say("2. streams:\n%s", indent(changes.String()))

	// The consumer side: one durable group for every user event. A failed
	// handler is retried by the broker after the backoff (no sleeping in
	// the consumer): 100ms after the first failure, 200ms after the second.
	backoff := transport.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: -1}
	r, err := events.NewRouter(nc, events.RouterConfig{
		Stream:     "AUTH_EVENTS",
		MaxDeliver: 4,
		Backoff:    backoff,
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	// Every handler reports here; the demo prints the lines as they come.
	lines := make(chan string, 32)
	var handled, retried atomic.Int64
	report := func(line string) { lines <- line }
	users := r.Group("demo-users", "auth.user.>")
	events.Handle(users, "user.created", func(ctx context.Context, e *events.Event, u UserCreated) error {
		if u.Email == "" {
			return events.Permanent(errors.New("user.created without an email"))
		}
		payload, _ := json.Marshal(e)
		handled.Add(1)
		report(fmt.Sprintf("handled user.created  user_id=%d email=%s  correlation=%s\n      %s", u.UserID, u.Email, events.CorrelationID(ctx), payload))
		return nil
	})
	// user.role.updated: the directory service is busy for the first two
	// deliveries; the third succeeds.
	var mu sync.Mutex
	var firstTry, lastTry time.Time
	users.On("user.role.updated", func(ctx context.Context, e *events.Event) error {
		d, _ := router.DeliveryFrom(ctx)
		mu.Lock()
		now := time.Now()
		if d.Attempt <= 1 {
			firstTry = now
		}
		when := "first delivery"
		if d.Attempt > 1 {
			when = fmt.Sprintf("%s after attempt %d (backoff %s)", round(now.Sub(lastTry)), d.Attempt-1, backoff.Delay(d.Attempt-1))
		}
		lastTry = now
		sinceFirst := round(now.Sub(firstTry))
		mu.Unlock()
		if d.Attempt < 3 {
			retried.Add(1)
			report(fmt.Sprintf("retry   user.role.updated attempt %d, %s: failed (directory service busy); the broker redelivers it in %s", d.Attempt, when, backoff.Delay(d.Attempt)))
			return errors.New("directory service busy")
		}
		data, err := e.DataMap()
		if err != nil {
			return events.Permanent(err)
		}
		handled.Add(1)
		report(fmt.Sprintf("handled user.role.updated attempt %d, %s, %s after the first: user_id=%v %v -> %v",
			d.Attempt, when, sinceFirst, data["user_id"], data["old_role"], data["new_role"]))
		return nil
	})
	users.On("user.deleted", func(ctx context.Context, e *events.Event) error {
		handled.Add(1)
		report(fmt.Sprintf("handled user.deleted  id=%s", e.ID))
		return nil
	})
	runCtx, stopRouter := context.WithCancel(ctx)
	routerDone := make(chan error, 1)
	go func() { routerDone <- r.Run(runCtx) }()
	var stopOnce sync.Once
	var runErr error
	stop := func() error {
		stopOnce.Do(func() { stopRouter(); runErr = <-routerDone })
		return runErr
	}
	defer stop()
	select {
	case <-r.Running():
	case err := <-routerDone:
		stopOnce.Do(func() { runErr = err })
		return fmt.Errorf("router: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	say("3. router consuming auth.user.> as durable demo-users")

	// The producer side.
	pub, err := events.NewPublisher(nc)
	if err != nil {
		return err
	}
	clock := events.SystemClock{}
	seed := events.NewEvent("user.created", "auth-service", "org-123", time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC),
		map[string]interface{}{"user_id": 12345, "email": "user@example.com", "role": "admin"})
	reqCtx := events.WithCorrelationID(ctx, "demo-request-1")
	if err := pub.Publish(reqCtx, "auth.user.created", seed); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	role := events.NewEvent("user.role.updated", "auth-service", "org-123", clock.Now(),
		map[string]interface{}{"user_id": 12345, "old_role": "admin", "new_role": "viewer"})
	if err := pub.PublishAsync(reqCtx, "auth.user.role.updated", role); err != nil {
		return fmt.Errorf("publish async: %w", err)
	}
	deleted := events.NewEvent("user.deleted", "auth-service", "org-123", clock.Now(), map[string]interface{}{"user_id": 12345})
	bad := events.NewEvent("user.created", "auth-service", "org-123", clock.Now(), map[string]interface{}{"user_id": 1})
	if err := pub.PublishBatch(ctx, "auth.user.deleted", deleted); err != nil {
		return fmt.Errorf("publish batch: %w", err)
	}
	if err := pub.Publish(ctx, "auth.user.created", bad); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "auth.user.created", Data: []byte(`{"id": "not an envelope"`)}); err != nil {
		return fmt.Errorf("publish malformed: %w", err)
	}
	if err := pub.Close(); err != nil { // flushes the async publish; nc stays open
		return err
	}
	const published = 5 // four events and one malformed message
	say("4. published %d messages: user.created (sync), user.role.updated (async), user.deleted (batch),\n   user.created without email (refused by its handler), one malformed message (not an event)", published)
	if err := pub.Publish(ctx, "auth.user.*", seed); errors.Is(err, events.ErrClosed) || errors.Is(err, events.ErrInvalidSubject) {
		say("   (after Close, publishing fails with a typed error: %v)", err)
	}

	say("5. handled, in the order it happened:")
	for handled.Load() < 3 {
		select {
		case line := <-lines:
			say("   %s", line)
		case <-ctx.Done():
			return fmt.Errorf("waiting for handled events: %w", ctx.Err())
		}
	}

	say("6. dead letters (stream DLQ):")
	dlq, err := js.Stream(ctx, "DLQ")
	if err != nil {
		return err
	}
	reasons := map[string]int{}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := getMsg(ctx, dlq, seq)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		h := nats.Header(m.Header)
		reason := h.Get(middleware.HeaderReason)
		reasons[reason]++
		what := "refused by its handler"
		if reason == middleware.ReasonUnmarshal {
			what = "undecodable: not an event"
		}
		say("   %s  reason=%s (%s)  deliveries=%s\n      error: %s", m.Subject, reason, what, h.Get(middleware.HeaderDeliveries), h.Get(middleware.HeaderError))
	}

	if err := stop(); err != nil {
		return fmt.Errorf("router shutdown: %w", err)
	}
	for len(lines) > 0 { // nothing may be left unprinted
		say("   %s", <-lines)
	}
	st := r.Stats()
	deadLettered := reasons[middleware.ReasonPermanent] + reasons[middleware.ReasonUnmarshal]

	say("7. router stopped cleanly. Every message accounted for: %d published = %d handled + %d dead-lettered (%d refused by its handler, %d undecodable);\n   on the way %d deliveries failed and were retried.",
		published, handled.Load(), deadLettered, reasons[middleware.ReasonPermanent], reasons[middleware.ReasonUnmarshal], retried.Load())
	say("   The router's own counts: handled=%d retried=%d dead_lettered=%d undecodable=%d handler_errors=%d (%d retried + %d refused)",
		st.Handled, st.Retried, st.DeadLettered, st.Undecodable, st.Failed, retried.Load(), reasons[middleware.ReasonPermanent])
	return outboxStep(ctx, say, nc, js)
}

// round is d to the millisecond, for printing.
func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// getMsg waits for the dead letter with sequence seq to be stored.
func getMsg(ctx context.Context, s natsjs.Stream, seq uint64) (*natsjs.RawStreamMsg, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := s.GetMsg(ctx, seq)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, natsjs.ErrMsgNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func indent(s string) string {
	out := "   "
	for _, c := range s {
		out += string(c)
		if c == '\n' {
			out += "   "
		}
	}
	return out
}
