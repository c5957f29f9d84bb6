// Command cqrs shows Watermill's CQRS event bus on the jetevents router:
// Go structs published with cqrs.EventBus travel as full envelopes on
// subjects like auth.user.created, and typed handlers func(ctx, *T) error
// run in router groups with the whole stack (correlation, broker-side retry,
// dead letters). One user signs up; a handler grants the default role by
// publishing RoleAssigned through the bus (correlated with the sign-up); the
// welcome mail fails once and is retried by the broker; an audit handler
// records the role with the conversation's correlation id.
//
//	go run ./examples/cqrs            # on an embedded JetStream server
//	go run ./examples/cqrs -memory    # on the in-memory bus, no server
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

func main() {
	onMemory := flag.Bool("memory", false, "run on the in-memory bus instead of an embedded JetStream server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *onMemory); err != nil {
		fmt.Fprintln(os.Stderr, "cqrs example failed:", err)
		os.Exit(1)
	}
}

// UserCreated is published when a user signs up (event name user.created).
type UserCreated struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
}

// RoleAssigned is published when a user gets a role. It names its own event
// type (marshaler.EventTyper): the default rule would say role.assigned.
type RoleAssigned struct {
	UserID int64  `json:"user_id"`
	Role   string `json:"role"`
}

// EventType is RoleAssigned's event type, hence its subject
// auth.user.role.assigned.
func (RoleAssigned) EventType() string { return "user.role.assigned" }

// Service is the auth service's event side: the bus it publishes on and the
// handlers it registers on a router. It does not know the transport.
type Service struct {
	Bus *cqrs.EventBus

	mu      sync.Mutex
	log     []string
	mailErr int // welcome mails still to fail
	done    chan struct{}
	pending int
}

// NewService builds the bus on pub and registers the handlers on r.
func NewService(r *router.Router, pub message.Publisher, clock envelope.Clock) (*Service, error) {
	m, err := marshaler.New(marshaler.Config{Source: "auth-service", Clock: clock})
	if err != nil {
		return nil, err
	}
	bus, err := router.NewEventBus(pub, router.EventBusConfig{Marshaler: marshaler.CQRS{Marshaler: m}, SubjectPrefix: "auth"})
	if err != nil {
		return nil, err
	}
	s := &Service{Bus: bus, mailErr: 1, done: make(chan struct{}), pending: 3}

	// Each group is a durable consumer; its filter is the subject the bus
	// publishes the event on.
	router.HandleEvent(r.Group("roles", router.EventSubject("auth", UserCreated{})), s.grantDefaultRole)
	router.HandleEvent(r.Group("welcome", router.EventSubject("auth", UserCreated{})), s.sendWelcome)
	router.HandleEvent(r.Group("audit", router.EventSubject("auth", RoleAssigned{})), s.audit)
	return s, nil
}

func (s *Service) say(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *Service) finished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending--; s.pending == 0 {
		close(s.done)
	}
}

// grantDefaultRole publishes RoleAssigned with the handler's context, so the
// new event is caused by the sign-up and in its conversation.
func (s *Service) grantDefaultRole(ctx context.Context, e *UserCreated) error {
	d, _ := router.DeliveryFrom(ctx)
	s.say("roles:   user.created user_id=%d on %s, correlation=%s", e.UserID, d.Subject, d.CorrelationID)
	if err := s.Bus.Publish(ctx, &RoleAssigned{UserID: e.UserID, Role: "member"}); err != nil {
		return err
	}
	s.finished()
	return nil
}

// sendWelcome fails once (the mail server is busy): the broker redelivers it
// after the backoff, and the second attempt succeeds.
func (s *Service) sendWelcome(ctx context.Context, e *UserCreated) error {
	d, _ := router.DeliveryFrom(ctx)
	s.mu.Lock()
	fail := s.mailErr > 0
	s.mailErr--
	s.mu.Unlock()
	if fail {
		s.say("welcome: attempt %d to mail %s failed (smtp busy), retried by the broker", d.Attempt, e.Email)
		return errors.New("smtp busy")
	}
	s.say("welcome: attempt %d mailed %s", d.Attempt, e.Email)
	s.finished()
	return nil
}

// audit records the role with the conversation it belongs to.
func (s *Service) audit(ctx context.Context, e *RoleAssigned) error {
	d, _ := router.DeliveryFrom(ctx)
	s.say("audit:   %s user_id=%d role=%s on %s, correlation=%s, caused by the user.created event: %t",
		marshaler.EventTypeOf(e), e.UserID, e.Role, d.Subject, d.CorrelationID, d.CausedBy != "")
	s.finished()
	return nil
}

// Log returns what the handlers did, in order.
func (s *Service) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func run(ctx context.Context, out io.Writer, onMemory bool) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	quiet := events.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := router.Config{
		Stream:     "AUTH_EVENTS",
		MaxDeliver: 3,
		Backoff:    transport.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: -1},
		Logger:     quiet,
	}
	var (
		r   *router.Router
		pub message.Publisher
		err error
	)
	if onMemory {
		bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{
			{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}},
			{Name: "DLQ", Subjects: []string{"dlq.>"}},
		}})
		if err != nil {
			return err
		}
		defer bus.Close()
		say("transport: the in-memory bus (no server)")
		if r, err = router.NewWithTransport(bus, cfg); err != nil {
			return err
		}
		if pub, err = memory.NewMessagePublisher(bus, nil); err != nil {
			return err
		}
	} else {
		srv, err := embedded.Start(embedded.Config{})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		nc, err := events.Connect(srv.URL(), events.WithName("jetevents-cqrs-example"), jetstream.WithLogger(quiet))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := natsjs.New(nc)
		if err != nil {
			return err
		}
		if _, err := jetstream.Ensure(ctx, js, quiet, jetstream.AuthEventsStream(), jetstream.DeadLetterStream()); err != nil {
			return err
		}
		say("transport: an embedded JetStream server at %s", srv.URL())
		if r, err = router.New(nc, cfg); err != nil {
			return err
		}
		mp, err := jetstream.NewMessagePublisher(nc)
		if err != nil {
			return err
		}
		defer mp.Close()
		pub = mp
	}

	svc, err := NewService(r, pub, envelope.SystemClock{})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	select {
	case <-r.Running():
	case err := <-runErr:
		return err
	}

	// The sign-up arrives with a request id: the conversation's correlation id.
	pubCtx := envelope.WithCorrelationID(ctx, "signup-request-1")
	if err := svc.Bus.Publish(pubCtx, &UserCreated{UserID: 12345, Email: "user@example.com"}); err != nil {
		return err
	}
	select {
	case <-svc.done:
	case <-ctx.Done():
		return fmt.Errorf("handlers did not finish: %w", ctx.Err())
	}
	stop()
	if err := <-runErr; err != nil {
		return err
	}
	for _, l := range svc.Log() {
		say("%s", l)
	}
	st := r.Stats()
	say("router: handled=%d retried=%d dead_lettered=%d", st.Handled, st.Retried, st.DeadLettered)
	return nil
}
