package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

// Every behaviour runs on the embedded JetStream server and on the memory
// bus: one Subscriber, the same outcomes. What only a real server can show
// (a restart) is JetStream-only.

const (
	testStream  = "AUTH_EVENTS"
	testSubject = "auth.user.created"
	waitFor     = 20 * time.Second
)

// fixture is one transport with the AUTH_EVENTS stream.
type fixture struct {
	name    string
	tr      transport.Transport
	publish func(t *testing.T, subject string, e *envelope.Event)
	// publishRaw stores data as it is, with no event headers.
	publishRaw func(t *testing.T, subject string, data []byte)
	// settled reports whether durable has nothing pending or unacked.
	settled func(t *testing.T, durable string) bool
	srv     *eventstest.Server // JetStream only
}

func jetstreamFixture(t *testing.T) *fixture {
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	tr, err := jetstream.NewTransport(srv.Connect(t), jetstream.TransportConfig{Heartbeat: 250 * time.Millisecond, Logger: middleware.NewSlogLogger(nil)})
	require.NoError(t, err)
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return &fixture{
		name: "jetstream", tr: tr, srv: srv,
		publish: func(t *testing.T, subject string, e *envelope.Event) {
			require.NoError(t, pub.Publish(ctxT(t), subject, e))
		},
		publishRaw: func(t *testing.T, subject string, data []byte) {
			_, err := srv.JS.Publish(ctxT(t), subject, data)
			require.NoError(t, err)
		},
		settled: func(t *testing.T, durable string) bool {
			c, err := srv.JS.Consumer(ctxT(t), testStream, durable)
			if err != nil {
				return false
			}
			info, err := c.Info(ctxT(t))
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		},
	}
}

func memoryFixture(t *testing.T) *fixture {
	bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: testStream, Subjects: []string{"auth.>"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	pub, err := memory.NewPublisher(bus, memory.PublisherConfig{})
	require.NoError(t, err)
	return &fixture{
		name: "memory", tr: bus,
		publish: func(t *testing.T, subject string, e *envelope.Event) {
			require.NoError(t, pub.Publish(ctxT(t), subject, e))
		},
		publishRaw: func(t *testing.T, subject string, data []byte) {
			_, err := bus.Publish(ctxT(t), subject, nil, data)
			require.NoError(t, err)
		},
		settled: func(t *testing.T, durable string) bool {
			st, err := bus.ConsumerState(testStream, durable)
			return err == nil && st.Pending == 0 && st.AckPending == 0
		},
	}
}

var fixtures = []func(t *testing.T) *fixture{jetstreamFixture, memoryFixture}

// each runs fn on every transport.
func each(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, mk := range fixtures {
		f := mk(t)
		t.Run(f.name, func(t *testing.T) { fn(t, f) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) events(t *testing.T, n int) []string {
	ids := make([]string, 0, n)
	for i := range n {
		e := envelope.NewEvent("user.created", "test", "org-1", time.Now(), map[string]any{"i": i})
		f.publish(t, testSubject, e)
		ids = append(ids, e.ID)
	}
	return ids
}

func (f *fixture) subscriber(t *testing.T, cfg subscriber.Config) *subscriber.Subscriber {
	if cfg.Stream == "" {
		cfg.Stream = testStream
	}
	s, err := subscriber.New(f.tr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (f *fixture) requireSettled(t *testing.T, durable string) {
	t.Helper()
	require.Eventually(t, func() bool { return f.settled(t, durable) }, waitFor, 10*time.Millisecond, "durable %s not settled", durable)
}

func subscribe(t *testing.T, s *subscriber.Subscriber, topic string) <-chan *message.Message {
	ch, err := s.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return ch
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "channel closed")
		return m
	case <-time.After(waitFor):
		t.Fatal("no message")
		return nil
	}
}

func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.False(t, ok, "got message %v, want a closed channel", m)
	case <-time.After(waitFor):
		t.Fatal("channel not closed")
	}
}

func attempt(m *message.Message) uint64 { return transport.FromContext(m.Context()).Attempt }

func TestConfig_Validate_rejects_configs_that_cannot_work(t *testing.T) {
	tests := []struct {
		name string
		cfg  subscriber.Config
	}{
		{"no stream", subscriber.Config{}},
		{"stream name with a dot", subscriber.Config{Stream: "A.B"}},
		{"durable with a wildcard", subscriber.Config{Stream: "S", Durable: "d*"}},
		{"negative concurrency", subscriber.Config{Stream: "S", Concurrency: -1}},
		{"fetch batch below concurrency", subscriber.Config{Stream: "S", Concurrency: 4, FetchBatch: 2}},
		{"max ack pending below fetch batch", subscriber.Config{Stream: "S", FetchBatch: 10, MaxAckPending: 5}},
		{"negative ack wait", subscriber.Config{Stream: "S", AckWait: -time.Second}},
		{"negative close timeout", subscriber.Config{Stream: "S", CloseTimeout: -time.Second}},
		{"unknown start position", subscriber.Config{Stream: "S", Start: 9}},
	}
	bus, err := memory.NewBus(memory.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := subscriber.New(bus, tt.cfg)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		})
	}
	_, err = subscriber.New(nil, subscriber.Config{Stream: "S"})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "nil transport")
	_, err = subscriber.New(bus, subscriber.Config{StreamForTopic: func(topic string) string { return topic }})
	assert.NoError(t, err)
}

func TestSubscriber_messages_carry_the_delivery_and_a_retry_delay_decided_by_middleware_wins(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, 1)
		s := f.subscriber(t, subscriber.Config{Durable: "carry", NakDelay: func(uint64) time.Duration { return time.Hour }})
		ch := subscribe(t, s, testSubject)

		m := receive(t, ch)
		require.Equal(t, ids[0], m.UUID)
		d := transport.FromContext(m.Context())
		require.NotNil(t, d, "the delivery is in the message's context")
		assert.Equal(t, testSubject, d.Subject)
		assert.Equal(t, testStream, d.Stream)
		assert.Equal(t, "carry", d.Consumer)
		assert.Equal(t, uint64(1), d.StreamSeq)
		assert.Equal(t, uint64(1), d.Attempt)
		// A retry middleware decided 50ms: it wins over NakDelay (1h).
		d.Verdict = transport.Retry(50*time.Millisecond, errors.New("try again"))
		require.True(t, m.Nack())
		m2 := receive(t, ch)
		assert.Equal(t, ids[0], m2.UUID)
		assert.Equal(t, uint64(2), attempt(m2))
		require.True(t, m2.Ack())
		f.requireSettled(t, "carry")
	})
}

func TestSubscriber_nack_redelivers_after_the_NakDelay_schedule(t *testing.T) {
	const initial = 150 * time.Millisecond
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, 1)
		s := f.subscriber(t, subscriber.Config{
			Durable:  "retry",
			NakDelay: transport.Backoff{Initial: initial, Max: time.Second, Jitter: -1}.Delay,
		})
		ch := subscribe(t, s, testSubject)
		var nackedAt time.Time
		for a := 1; a <= 3; a++ {
			m := receive(t, ch)
			require.Equal(t, ids[0], m.UUID)
			require.Equal(t, uint64(a), attempt(m))
			if a > 1 {
				want := initial << (a - 2)
				assert.GreaterOrEqual(t, time.Since(nackedAt), want, "redelivery %d came before its delay", a)
			}
			if a == 3 {
				require.True(t, m.Ack())
				break
			}
			nackedAt = time.Now()
			require.True(t, m.Nack())
		}
		f.requireSettled(t, "retry")
	})
}

func TestSubscriber_undecodable_message_goes_to_the_hook_then_is_acked_or_nacked_when_the_hook_fails(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		var mu sync.Mutex
		calls := 0
		hookErr := errors.New("dead-letter stream down")
		s := f.subscriber(t, subscriber.Config{
			Durable:  "undecodable",
			NakDelay: func(uint64) time.Duration { return 0 },
			OnUndecodable: func(_ context.Context, d *transport.Delivery, err error) error {
				assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
				assert.Equal(t, []byte("{not json"), d.Data, "the message as stored")
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 1 {
					return hookErr // nacked: it comes back
				}
				return nil // stored elsewhere: acked
			},
		})
		ch := subscribe(t, s, testSubject)
		f.publishRaw(t, testSubject, []byte("{not json"))
		ids := f.events(t, 1)
		m := receive(t, ch)
		assert.Equal(t, ids[0], m.UUID, "the next event flows")
		require.True(t, m.Ack())
		f.requireSettled(t, "undecodable")
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, 2, calls, "failed once (nacked), then stored")
	})
}

func TestSubscriber_long_handler_is_kept_from_redelivery_by_its_lease(t *testing.T) {
	const ackWait = time.Second
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, 1)
		// Concurrency 2: a redelivery would have a free slot to arrive through.
		s := f.subscriber(t, subscriber.Config{Durable: "long", AckWait: ackWait, Concurrency: 2})
		ch := subscribe(t, s, testSubject)
		m := receive(t, ch)
		require.Equal(t, ids[0], m.UUID)
		handlerDone := time.After(3 * ackWait) // the handler's own duration, not a wait for a condition
		select {
		case again := <-ch:
			t.Fatalf("redelivered during the handler: %s attempt %d", again.UUID, attempt(again))
		case <-handlerDone:
		}
		require.True(t, m.Ack())
		f.requireSettled(t, "long")
	})
}

func TestSubscriber_two_subscribers_on_one_durable_split_the_work(t *testing.T) {
	const n = 100
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, n)
		var mu sync.Mutex
		got := map[string]int{}
		per := map[int]int{}
		for i := range 2 {
			s := f.subscriber(t, subscriber.Config{Durable: "split", FetchBatch: 10})
			ch := subscribe(t, s, testSubject)
			go func() {
				for m := range ch {
					mu.Lock()
					got[m.UUID]++
					per[i]++
					mu.Unlock()
					time.Sleep(time.Millisecond) // a handler's work, so that both take turns
					m.Ack()
				}
			}()
		}
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n }, waitFor, 10*time.Millisecond)
		f.requireSettled(t, "split")
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			assert.Equal(t, 1, got[id], "event %s", id)
		}
		assert.Positive(t, per[0], "both subscribers worked")
		assert.Positive(t, per[1], "both subscribers worked")
	})
}

func TestSubscriber_stop_releases_what_it_held_without_spending_an_attempt(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, 10)
		s := f.subscriber(t, subscriber.Config{Durable: "stop", FetchBatch: 10})
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := s.Subscribe(ctx, testSubject)
		require.NoError(t, err)
		m := receive(t, ch)
		require.Equal(t, ids[0], m.UUID)
		cancel()
		requireClosed(t, ch)
		require.NoError(t, m.Context().Err(), "sent: its ctx outlives the Subscribe ctx")
		require.True(t, m.Ack(), "and it is still settled")

		// The nine held behind it come back at once, each still on its
		// first handler attempt.
		ch2 := subscribe(t, f.subscriber(t, subscriber.Config{Durable: "stop"}), testSubject)
		got := map[string]bool{}
		for range ids[1:] {
			m := receive(t, ch2)
			got[m.UUID] = true
			d := transport.FromContext(m.Context())
			exact, err := d.Settler.ExactAttempt(ctxT(t))
			require.NoError(t, err)
			assert.Equal(t, uint64(1), exact, "event %s (seq %d, delivery %d): a release is not an attempt", m.UUID, d.StreamSeq, d.Attempt)
			require.True(t, m.Ack())
		}
		for _, id := range ids[1:] {
			assert.True(t, got[id], "event %s came back", id)
		}
		f.requireSettled(t, "stop")
	})
}

func TestSubscriber_close_deadline_cuts_unsettled_messages_and_loses_nothing(t *testing.T) {
	const n, inFlight = 20, 5
	each(t, func(t *testing.T, f *fixture) {
		ids := f.events(t, n)
		first, err := subscriber.New(f.tr, subscriber.Config{Stream: testStream, Durable: "closing", Concurrency: inFlight, CloseTimeout: 300 * time.Millisecond})
		require.NoError(t, err)
		ch := subscribe(t, first, testSubject)
		acked := map[string]bool{}
		held := make([]*message.Message, 0, inFlight)
		for range inFlight {
			held = append(held, receive(t, ch))
		}
		require.True(t, held[0].Ack())
		acked[held[0].UUID] = true

		err = first.Close()
		require.ErrorIs(t, err, transport.ErrCloseTimeout)
		for _, m := range held[1:] {
			select {
			case <-m.Context().Done():
				assert.ErrorIs(t, context.Cause(m.Context()), transport.ErrCloseTimeout)
			default:
				t.Fatalf("message %s context still live after Close", m.UUID)
			}
		}
		requireClosed(t, ch)
		held[1].Ack() // too late: it was nacked

		ch2 := subscribe(t, f.subscriber(t, subscriber.Config{Durable: "closing", Concurrency: inFlight}), testSubject)
		for len(acked) < n {
			m := receive(t, ch2)
			acked[m.UUID] = true
			require.True(t, m.Ack())
		}
		for _, id := range ids {
			assert.True(t, acked[id], "event %s lost", id)
		}
		f.requireSettled(t, "closing")
	})
}

func TestSubscriber_close_waits_for_messages_settled_in_time(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		f.events(t, 3)
		s := f.subscriber(t, subscriber.Config{Durable: "graceful", Concurrency: 3, CloseTimeout: waitFor})
		ch := subscribe(t, s, testSubject)
		held := []*message.Message{receive(t, ch), receive(t, ch), receive(t, ch)}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		requireClosed(t, ch) // Close is under way...
		for _, m := range held {
			require.NoError(t, m.Context().Err()) // ...the handlers keep their ctx...
			require.True(t, m.Ack())              // ...and their acks count.
		}
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(2 * waitFor):
			t.Fatal("Close did not return")
		}
		f.requireSettled(t, "graceful")
	})
}

func TestSubscriber_concurrency_bounds_messages_sent_and_not_settled(t *testing.T) {
	const concurrency = 3
	each(t, func(t *testing.T, f *fixture) {
		f.events(t, 10)
		s := f.subscriber(t, subscriber.Config{Durable: "bound", Concurrency: concurrency, FetchBatch: 10})
		ch := subscribe(t, s, testSubject)
		var held []*message.Message
		for range concurrency {
			held = append(held, receive(t, ch))
		}
		select {
		case m := <-ch:
			t.Fatalf("a 4th message %s was sent with 3 unsettled", m.UUID)
		case <-time.After(200 * time.Millisecond): // nothing may come: a wait for an absence
		}
		require.True(t, held[0].Ack())
		require.True(t, receive(t, ch).Ack(), "a slot freed: the next one comes")
		for _, m := range held[1:] {
			require.True(t, m.Ack())
		}
	})
}

func TestSubscriber_after_close_subscribe_fails_and_close_is_idempotent(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s, err := subscriber.New(f.tr, subscriber.Config{Stream: testStream})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "Close is idempotent")
		_, err = s.Subscribe(context.Background(), testSubject)
		require.ErrorIs(t, err, transport.ErrClosed)
		require.ErrorIs(t, s.SubscribeInitialize(testSubject), transport.ErrClosed)
	})
}

func TestSubscriber_subscribe_to_a_missing_stream_fails_with_ErrNoStream(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.subscriber(t, subscriber.Config{Stream: "NOPE"})
		_, err := s.Subscribe(context.Background(), "nope.x")
		require.ErrorIs(t, err, transport.ErrNoStream)
	})
}

func TestSubscriber_subscribe_initialize_keeps_messages_for_a_durable_before_subscribe(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.subscriber(t, subscriber.Config{Durable: "early", Start: transport.StartNew})
		require.NoError(t, s.SubscribeInitialize(testSubject))
		ids := f.events(t, 1) // after the durable, before Subscribe
		m := receive(t, subscribe(t, s, testSubject))
		assert.Equal(t, ids[0], m.UUID)
		require.True(t, m.Ack())
	})
}

func TestSubscriber_survives_a_server_restart(t *testing.T) {
	f := jetstreamFixture(t)
	s := f.subscriber(t, subscriber.Config{Durable: "restart"})
	ch := subscribe(t, s, testSubject)
	before := f.events(t, 1)
	m := receive(t, ch)
	require.Equal(t, before[0], m.UUID)
	require.True(t, m.Ack())

	require.NoError(t, f.srv.Restart())
	require.Eventually(t, func() bool { return f.srv.Conn.IsConnected() }, waitFor, 10*time.Millisecond)
	var after string
	require.Eventually(t, func() bool {
		e := envelope.NewEvent("user.created", "test", "", time.Now(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pub, err := jetstream.NewPublisher(f.srv.Conn)
		if err != nil {
			return false
		}
		defer pub.Close()
		if err := pub.Publish(ctx, testSubject, e); err != nil {
			return false
		}
		after = e.ID
		return true
	}, waitFor, 50*time.Millisecond)
	m = receive(t, ch)
	require.Equal(t, after, m.UUID, fmt.Sprintf("attempt %d", attempt(m)))
	require.True(t, m.Ack())
}
