package jetstream_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// waitFor bounds every wait of these tests: long enough for a loaded 2-core
// machine under -race, short enough to fail fast.
const waitFor = 10 * time.Second

// subFixture is an embedded server with one stream ("EVENTS" on "ev.>").
type subFixture struct {
	t   *testing.T
	srv *eventstest.Server
}

const (
	testStream  = "EVENTS"
	testSubject = "ev.user.created"
)

func newSubFixture(t *testing.T) *subFixture {
	t.Helper()
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{
		Name:     testStream,
		Subjects: []string{"ev.>"},
		Storage:  natsjs.MemoryStorage,
	})
	require.NoError(t, err)
	return &subFixture{t: t, srv: srv}
}

// subscriber returns a Subscriber on its own connection, closed at cleanup.
func (f *subFixture) subscriber(cfg jetstream.SubscriberConfig) *jetstream.Subscriber {
	f.t.Helper()
	if cfg.Stream == "" && cfg.StreamForTopic == nil {
		cfg.Stream = testStream
	}
	if cfg.CloseTimeout == 0 {
		// A failed test may leave a message in flight: don't let the cleanup
		// Close wait the 30s default for it.
		cfg.CloseTimeout = 2 * time.Second
	}
	sub, err := jetstream.NewSubscriber(f.srv.Connect(f.t), cfg)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// subscribe subscribes sub to topic with a context canceled at cleanup.
func (f *subFixture) subscribe(sub *jetstream.Subscriber, topic string) <-chan *message.Message {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(f.t, err)
	return ch
}

// publish stores n events on subject with plain nats.go and the wire
// contract's encoding; it returns their ids in order.
func (f *subFixture) publish(subject string, n int) []string {
	f.t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		e := envelope.NewEvent("user.created", "test", "org-1", time.Now(), map[string]any{"i": i})
		m, err := marshaler.Default().EventToNATS(subject, e, marshaler.Relations{})
		require.NoError(f.t, err)
		f.publishRaw(m)
		ids = append(ids, e.ID)
	}
	return ids
}

// publishRaw stores m as is.
func (f *subFixture) publishRaw(m *nats.Msg) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := f.srv.JS.PublishMsg(ctx, m)
	require.NoError(f.t, err)
}

// consumerInfo reads the durable's state from the server.
func (f *subFixture) consumerInfo(durable string) *natsjs.ConsumerInfo {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := f.srv.JS.Consumer(ctx, testStream, durable)
	require.NoError(f.t, err)
	info, err := c.Info(ctx)
	require.NoError(f.t, err)
	return info
}

// requireSettled waits until the durable has nothing pending or unacked.
func (f *subFixture) requireSettled(durable string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		info := f.consumerInfo(durable)
		return info.NumAckPending == 0 && info.NumPending == 0
	}, waitFor, 10*time.Millisecond, "consumer %s still has pending or unacked messages", durable)
}

// advisories subscribes (core NATS) to a JetStream advisory subject and
// returns the decoded advisories.
func (f *subFixture) advisories(subject string) <-chan map[string]any {
	f.t.Helper()
	ch := make(chan map[string]any, 16)
	s, err := f.srv.Conn.Subscribe(subject, func(m *nats.Msg) {
		var adv map[string]any
		if json.Unmarshal(m.Data, &adv) == nil {
			select {
			case ch <- adv:
			default:
			}
		}
	})
	require.NoError(f.t, err)
	require.NoError(f.t, f.srv.Conn.Flush())
	f.t.Cleanup(func() { _ = s.Unsubscribe() })
	return ch
}

// receive returns the next message of ch or fails the test.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "channel closed")
		return m
	case <-time.After(waitFor):
		t.Fatal("no message within", waitFor)
		return nil
	}
}

// requireClosed fails unless ch is closed (draining nothing else).
func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.False(t, ok, "expected a closed channel, got message %v", m)
	case <-time.After(waitFor):
		t.Fatal("channel not closed within", waitFor)
	}
}
