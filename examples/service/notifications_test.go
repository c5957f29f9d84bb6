package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/examples/service"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// The Notifier's handler tests: the service and its handler, a real router
// with its whole stack (retry, dead letters, correlation), on the in-memory
// bus. No NATS server; each test takes milliseconds (go test -v shows it).

// mailerFake fails as told, then records what it sent.
type mailerFake struct {
	mu    sync.Mutex
	fails []error // returned by the first calls, in order
	sent  []string
	calls int
}

func (m *mailerFake) Send(_ context.Context, to, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if len(m.fails) > 0 {
		err := m.fails[0]
		m.fails = m.fails[1:]
		return err
	}
	m.sent = append(m.sent, to+": "+subject)
	return nil
}

func (m *mailerFake) snapshot() (calls int, sent []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, append([]string(nil), m.sent...)
}

// world is the service on a transport: a bus (or a server), the publisher
// the service publishes with, a router running the Notifier.
type world struct {
	publisher events.Publisher
	router    *events.Router
	mailer    *mailerFake
	// messages returns the stored messages of a subject filter.
	messages func(filter string) []stored
}

type stored struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}

var testClock = envelope.ClockFunc(func() time.Time { return time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC) })

// routerConfig retries after 10ms, 20ms: a test never waits long.
func routerConfig() events.RouterConfig {
	return events.RouterConfig{
		Stream:     "MY_SERVICE",
		MaxDeliver: 3,
		Backoff:    transport.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, Jitter: -1},
		Logger:     events.NewSlogLogger(nil),
	}
}

// onMemory builds the world on the in-memory bus.
func onMemory(t *testing.T, m *mailerFake) *world {
	t.Helper()
	bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{
		{Name: "MY_SERVICE", Subjects: []string{"my-service.>"}},
		{Name: "DLQ", Subjects: []string{"dlq.>"}},
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	pub, err := memory.NewPublisher(bus, memory.PublisherConfig{})
	require.NoError(t, err)
	r, err := router.NewWithTransport(bus, routerConfig())
	require.NoError(t, err)
	return &world{publisher: pub, router: r, mailer: m, messages: func(filter string) []stored {
		var out []stored
		for _, msg := range bus.Messages(filter) {
			out = append(out, stored{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
		}
		return out
	}}
}

// run registers the Notifier and runs the router until the test ends.
func (w *world) run(t *testing.T) {
	t.Helper()
	service.NewNotifier(w.mailer, w.publisher, testClock).Register(w.router)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("router did not stop")
		}
	})
	select {
	case <-w.router.Running():
	case err := <-done:
		t.Fatalf("router did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start")
	}
}

// waitFor waits until filter has n stored messages.
func (w *world) waitFor(t *testing.T, filter string, n int) []stored {
	t.Helper()
	require.Eventually(t, func() bool { return len(w.messages(filter)) >= n }, 10*time.Second, time.Millisecond, "%d messages on %s", n, filter)
	return w.messages(filter)
}

func header(s stored, k string) string {
	if v := s.Header[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// notificationCases are the handler's behaviours, run on the memory bus
// here and on the embedded server by the integration test.
var notificationCases = []struct {
	name   string
	mailer func() *mailerFake
	check  func(t *testing.T, w *world)
}{
	{"a created resource is mailed and notification.sent published in the same conversation", func() *mailerFake { return &mailerFake{} },
		func(t *testing.T, w *world) {
			svc := service.New(w.publisher, testClock)
			ctx := events.WithCorrelationID(context.Background(), "request-1")
			require.NoError(t, svc.CreateResource(ctx, &service.ResourceData{OrganizationID: "org-123", Type: "bucket"}))
			sent := w.waitFor(t, "my-service.notification.sent", 1)
			created := w.messages("my-service.resource.created")
			require.Len(t, created, 1)
			assert.Equal(t, "request-1", header(sent[0], "ce-correlationid"), "the conversation continues")
			assert.Equal(t, header(created[0], "ce-id"), header(sent[0], "ce-causationid"), "caused by resource.created")
			var e events.Event
			require.NoError(t, e.UnmarshalJSON(sent[0].Data))
			d, err := e.DataMap()
			require.NoError(t, err)
			assert.Equal(t, "admins@org-123.example", d["to"])
			assert.Equal(t, "2024-01-15T00:00:00Z", header(sent[0], "ce-time"))
			_, mails := w.mailer.snapshot()
			assert.Equal(t, []string{"admins@org-123.example: New bucket res-org-123"}, mails)
		}},
	{"a transient mail failure is retried by the broker", func() *mailerFake {
		return &mailerFake{fails: []error{errors.New("smtp busy")}}
	}, func(t *testing.T, w *world) {
		require.NoError(t, service.New(w.publisher, testClock).CreateResource(context.Background(), &service.ResourceData{OrganizationID: "org-1", Type: "vm"}))
		w.waitFor(t, "my-service.notification.sent", 1)
		calls, mails := w.mailer.snapshot()
		assert.Equal(t, 2, calls, "failed once, sent on the redelivery")
		assert.Len(t, mails, 1)
		assert.Empty(t, w.messages("dlq.>"))
	}},
	{"a bad recipient is dead-lettered at once", func() *mailerFake {
		return &mailerFake{fails: []error{service.ErrBadRecipient}}
	}, func(t *testing.T, w *world) {
		require.NoError(t, service.New(w.publisher, testClock).CreateResource(context.Background(), &service.ResourceData{OrganizationID: "org-2", Type: "db"}))
		dl := w.waitFor(t, "dlq.>", 1)
		assert.Equal(t, "dlq.my-service.resource.created", dl[0].Subject)
		assert.Equal(t, middleware.ReasonPermanent, header(dl[0], middleware.HeaderReason))
		assert.Equal(t, service.Group, header(dl[0], middleware.HeaderConsumer))
		calls, _ := w.mailer.snapshot()
		assert.Equal(t, 1, calls, "never retried")
		assert.Empty(t, w.messages("my-service.notification.sent"))
	}},
	{"a mail server down for good is dead-lettered after MaxDeliver attempts", func() *mailerFake {
		down := errors.New("connection refused")
		return &mailerFake{fails: []error{down, down, down}}
	}, func(t *testing.T, w *world) {
		require.NoError(t, service.New(w.publisher, testClock).CreateResource(context.Background(), &service.ResourceData{OrganizationID: "org-3", Type: "queue"}))
		dl := w.waitFor(t, "dlq.>", 1)
		assert.Equal(t, middleware.ReasonMaxDeliver, header(dl[0], middleware.HeaderReason))
		assert.Equal(t, "3", header(dl[0], middleware.HeaderDeliveries))
		assert.Contains(t, header(dl[0], middleware.HeaderError), "connection refused")
	}},
}

func TestNotifier_on_the_memory_bus(t *testing.T) {
	for _, tt := range notificationCases {
		t.Run(tt.name, func(t *testing.T) {
			w := onMemory(t, tt.mailer())
			w.run(t)
			tt.check(t, w)
		})
	}
}
