//go:build ignore

// Publisher example: a service that publishes user events to JetStream.
//
//	go run ./cmd/jetevents server &           # or: docker-compose up -d nats
//	./scripts/setup-nats-streams.sh           # AUTH_EVENTS on auth.>, DLQ on dlq.>
//	go run pkg/events/examples/publisher_example.go
//
// NATS_URL selects the server (default nats://127.0.0.1:4222).
// (The build tag keeps this standalone program out of `go build ./...`;
// `go run FILE` ignores it.)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/jetstream"
)

// UserService is the service integration pattern: the publisher and the
// TimeManager are injected, so tests swap in events.PublisherMock and a fake
// clock.
type UserService struct {
	publisher   events.Publisher
	timeManager events.TimeManager
	log         *slog.Logger
	// asyncFailures counts PublishAsync events whose ack failed: they reach
	// the publisher's async error handler, never the caller.
	asyncFailures atomic.Int64
}

// NewUserService wires the service to a NATS connection it does not own.
func NewUserService(nc *nats.Conn, tm events.TimeManager, log *slog.Logger) (*UserService, error) {
	s := &UserService{timeManager: tm, log: log}
	publisher, err := events.NewPublisher(nc, jetstream.PublisherConfig{Logger: events.NewSlogLogger(log), OnAsyncError: func(ae jetstream.AsyncError) {
		s.asyncFailures.Add(1)
		log.Error("async publish failed", "err", ae)
	}})
	if err != nil {
		return nil, err
	}
	s.publisher = publisher
	return s, nil
}

// CreateUser publishes user.created synchronously: it returns once the stream
// has stored the event (or with a typed error).
func (s *UserService) CreateUser(ctx context.Context, orgID string, userID int, email, role string) error {
	event := events.NewEvent("user.created", "auth-service", orgID, s.timeManager.Now(), map[string]interface{}{
		"user_id": userID,
		"email":   email,
		"role":    role,
	})
	if err := s.publisher.Publish(ctx, "auth.user.created", event); err != nil {
		if errors.Is(err, events.ErrNoStream) {
			s.log.Error("no stream for auth.user.created: run ./scripts/setup-nats-streams.sh", "err", err)
		}
		return err
	}
	s.log.Info("published", "type", event.Type, "id", event.ID, "subject", "auth.user.created")
	return nil
}

// UpdateRole publishes user.role.updated asynchronously: it returns once the
// event is queued; a failed ack reaches the publisher's error handler.
func (s *UserService) UpdateRole(ctx context.Context, orgID string, userID int, oldRole, newRole string) error {
	event := events.NewEvent("user.role.updated", "auth-service", orgID, s.timeManager.Now(), map[string]interface{}{
		"user_id":  userID,
		"old_role": oldRole,
		"new_role": newRole,
	})
	if err := s.publisher.PublishAsync(ctx, "auth.user.role.updated", event); err != nil {
		return err
	}
	s.log.Info("queued", "type", event.Type, "id", event.ID)
	return nil
}

// DeleteUser publishes user.deleted synchronously.
func (s *UserService) DeleteUser(ctx context.Context, orgID string, userID int) error {
	event := events.NewEvent("user.deleted", "auth-service", orgID, s.timeManager.Now(), map[string]interface{}{
		"user_id": userID,
	})
	if err := s.publisher.Publish(ctx, "auth.user.deleted", event); err != nil {
		return err
	}
	s.log.Info("published", "type", event.Type, "id", event.ID, "subject", "auth.user.deleted")
	return nil
}

// Close flushes pending async publishes (the connection stays open) and
// reports async publishes that failed.
func (s *UserService) Close() error {
	if err := s.publisher.Close(); err != nil {
		return err
	}
	if n := s.asyncFailures.Load(); n > 0 {
		return fmt.Errorf("%d async publishes failed", n)
	}
	return nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	// The connection logs (connected, reconnected, lost) through the same
	// logger as the rest of the program: one format.
	nc, err := events.Connect(url, events.WithName("publisher-example"), jetstream.WithLogger(events.NewSlogLogger(log)))
	if err != nil {
		log.Error("connect", "url", url, "err", err)
		os.Exit(1)
	}
	defer nc.Close()

	svc, err := NewUserService(nc, events.SystemClock{}, log)
	if err != nil {
		log.Error("publisher", "err", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	err = errors.Join(
		svc.CreateUser(ctx, "org-123", 12345, "user@example.com", "admin"),
		svc.UpdateRole(ctx, "org-123", 12345, "admin", "viewer"),
		svc.DeleteUser(ctx, "org-123", 12345),
		svc.Close(), // waits for the async publish's ack
	)
	if err != nil {
		log.Error("publish failed", "err", err)
		os.Exit(1)
	}
	log.Info("done: 3 events published")
}
