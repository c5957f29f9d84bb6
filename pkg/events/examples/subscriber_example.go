//go:build ignore

// Subscriber example: a durable consumer of every user event of the auth
// service (auth.user.>), routed by event type to typed handlers, with
// broker-side retries, a dead-letter stream and graceful shutdown.
//
//	go run ./cmd/jetevents server &           # or: docker-compose up -d nats
//	./scripts/setup-nats-streams.sh
//	go run pkg/events/examples/subscriber_example.go
//
// NATS_URL selects the server (default nats://127.0.0.1:4222). Stop it with
// Ctrl-C (SIGINT) or SIGTERM: in-flight events finish, nothing is lost.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/jetstream"
)

// UserCreated is the data of a user.created event.
type UserCreated struct {
	UserID int    `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// RoleUpdated is the data of a user.role.updated event.
type RoleUpdated struct {
	UserID  int    `json:"user_id"`
	OldRole string `json:"old_role"`
	NewRole string `json:"new_role"`
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	// The connection logs (connected, reconnected, lost) through the same
	// logger as the rest of the program: one format.
	nc, err := events.Connect(url, events.WithName("subscriber-example"), jetstream.WithLogger(events.NewSlogLogger(log)))
	if err != nil {
		log.Error("connect", "url", url, "err", err)
		os.Exit(1)
	}
	defer nc.Close()

	r, err := events.NewRouter(nc, events.RouterConfig{
		Stream:     "AUTH_EVENTS",
		MaxDeliver: 5,                // deliveries before the event is dead-lettered (dlq.auth.user.*)
		AckWait:    30 * time.Second, // redelivery if this process dies mid-event
		Logger:     events.NewSlogLogger(log),
	})
	if err != nil {
		log.Error("router", "err", err)
		os.Exit(1)
	}

	// One durable consumer for all user events; dispatch by event type.
	// "auth.user.>" rather than "auth.user.*": a '*' matches exactly one
	// token, so auth.user.* would miss auth.user.role.updated.
	users := r.Group("user-notifications", "auth.user.>")
	events.Handle(users, "user.created", func(ctx context.Context, e *events.Event, u UserCreated) error {
		if u.Email == "" {
			// Retrying cannot fix this: dead-letter it now.
			return events.Permanent(errors.New("user.created without email"))
		}
		log.Info("welcome mail", "id", e.ID, "user_id", u.UserID, "email", u.Email, "correlation_id", events.CorrelationID(ctx))
		return nil
	})
	events.Handle(users, "user.role.updated", func(ctx context.Context, e *events.Event, u RoleUpdated) error {
		log.Info("role changed", "id", e.ID, "user_id", u.UserID, "from", u.OldRole, "to", u.NewRole)
		return nil
	})
	users.On("user.deleted", func(ctx context.Context, e *events.Event) error {
		data, err := e.DataMap()
		if err != nil {
			return events.Permanent(err)
		}
		log.Info("user deleted", "id", e.ID, "user_id", data["user_id"])
		return nil
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("consuming auth.user.> as durable user-notifications; Ctrl-C to stop")
	if err := r.Run(ctx); err != nil {
		log.Error("router stopped", "err", err)
		os.Exit(1)
	}
	log.Info("stopped cleanly")
}
