package router_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

const (
	stream    = "AUTH_EVENTS"
	dlqStream = "DLQ"
)

// env is an embedded server with the AUTH_EVENTS and DLQ streams and a
// publisher on its connection.
type env struct {
	srv *eventstest.Server
	pub *jetstream.Publisher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return &env{srv: srv, pub: pub}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fastConfig retries within milliseconds (no jitter, so the schedule is exact)
// and keeps AckWait short so crash recovery is quick.
func fastConfig() router.Config {
	return router.Config{
		Stream:       stream,
		MaxDeliver:   4,
		AckWait:      2 * time.Second,
		Backoff:      transport.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: -1},
		CloseTimeout: 5 * time.Second,
		Logger:       middleware.NewSlogLogger(nil),
	}
}

// start runs r until the test ends (or stop is called) and waits until its
// subscriptions are live.
func start(t *testing.T, r *router.Router) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Running():
	case err := <-done:
		cancel()
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("router did not start")
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("router did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (e *env) publish(t *testing.T, subject string, ev *envelope.Event) {
	t.Helper()
	require.NoError(t, e.pub.Publish(ctxT(t), subject, ev))
}

func userEvent(typ string, data map[string]any) *envelope.Event {
	return envelope.NewEvent(typ, "auth-service", "org-123", time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), data)
}

// deadLetters returns every message in the DLQ stream.
func (e *env) deadLetters(t *testing.T) []*natsjs.RawStreamMsg {
	t.Helper()
	s, err := e.srv.JS.Stream(ctxT(t), dlqStream)
	require.NoError(t, err)
	info, err := s.Info(ctxT(t))
	require.NoError(t, err)
	var out []*natsjs.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctxT(t), seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

func (e *env) waitDeadLetters(t *testing.T, n int) []*natsjs.RawStreamMsg {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.deadLetters(t)) >= n }, 20*time.Second, 20*time.Millisecond,
		"waiting for %d dead letters", n)
	return e.deadLetters(t)
}

// consumerSettled reports whether the durable has nothing pending or unacked.
func (e *env) waitSettled(t *testing.T, durable string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := e.srv.JS.Consumer(ctxT(t), stream, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctxT(t))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 20*time.Second, 20*time.Millisecond, "consumer %s not settled", durable)
}

// calls records handler invocations safely.
type calls struct {
	mu    sync.Mutex
	at    []time.Time
	ids   []string
	attem []uint64
}

func (c *calls) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, time.Now())
	c.ids = append(c.ids, id)
	return len(c.at)
}

func (c *calls) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

func (c *calls) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.at...)
}

func header(m *natsjs.RawStreamMsg, k string) string { return nats.Header(m.Header).Get(k) }
