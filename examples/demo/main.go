// Command demo shows jetevents end to end with nothing installed: it starts
// an embedded NATS server with JetStream, creates the AUTH_EVENTS and DLQ
// streams, runs a router consuming auth.user.>, publishes the seed's events
// (sync, async), one event its handler refuses and one malformed message,
// and prints what was handled and what was dead-lettered.
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
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
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
	changes, err := jetstream.Apply(ctx, js, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	if err != nil {
		return err
	}
	say("2. streams:\n%s", indent(changes.String()))

	// The consumer side: one durable group for every user event.
	r, err := events.NewRouter(nc, events.RouterConfig{
		Stream:     "AUTH_EVENTS",
		MaxDeliver: 3,
		Backoff:    middleware.Backoff{Initial: 50 * time.Millisecond},
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	handled := make(chan string, 16)
	record := func(line string) { handled <- line }
	users := r.Group("demo-users", "auth.user.>")
	events.Handle(users, "user.created", func(ctx context.Context, e *events.Event, u UserCreated) error {
		if u.Email == "" {
			return events.Permanent(errors.New("user.created without an email"))
		}
		payload, _ := json.Marshal(e)
		record(fmt.Sprintf("user.created  user_id=%d email=%s  correlation=%s\n      %s", u.UserID, u.Email, events.CorrelationID(ctx), payload))
		return nil
	})
	users.On("user.role.updated", func(ctx context.Context, e *events.Event) error {
		d, err := e.DataMap()
		if err != nil {
			return events.Permanent(err)
		}
		record(fmt.Sprintf("user.role.updated user_id=%v %v -> %v", d["user_id"], d["old_role"], d["new_role"]))
		return nil
	})
	users.On("user.deleted", func(ctx context.Context, e *events.Event) error {
		record(fmt.Sprintf("user.deleted  id=%s", e.ID))
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
	say("4. published: user.created (sync), user.role.updated (async), user.deleted (batch),\n   user.created without email (refused by its handler), one malformed message")
	if err := pub.Publish(ctx, "auth.user.*", seed); errors.Is(err, events.ErrClosed) || errors.Is(err, events.ErrInvalidSubject) {
		say("   (after Close, publishing fails with a typed error: %v)", err)
	}

	say("5. handled:")
	for i := 0; i < 3; i++ {
		select {
		case line := <-handled:
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
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := getMsg(ctx, dlq, seq)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		h := nats.Header(m.Header)
		say("   %s  reason=%s  deliveries=%s\n      error: %s", m.Subject, h.Get(middleware.HeaderReason), h.Get(middleware.HeaderDeliveries), h.Get(middleware.HeaderError))
	}

	if err := stop(); err != nil {
		return fmt.Errorf("router shutdown: %w", err)
	}
	st := r.Stats()
	say("7. router stopped cleanly: handled=%d failed=%d; nothing lost", st.Handled, st.Failed)
	return nil
}

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
