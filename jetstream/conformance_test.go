package jetstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

// Watermill's universal Pub/Sub suite against the Subscriber on the embedded
// server. The suite publishes arbitrary payloads and metadata, not events, so
// it runs with a raw pass-through encoding (metadata <-> headers, UUID in a
// header) and a publisher written here on plain nats.go: the jetevents
// publisher only carries events.

// conformanceFeatures is what the Subscriber promises, flag by flag.
func conformanceFeatures() tests.Features {
	return tests.Features{
		// A consumer group is a durable consumer: subscribers with the same
		// Durable share its messages, another Durable gets all of them.
		ConsumerGroups: true,
		// At-least-once: a Nack, an AckWait expiry or a Close with messages
		// in flight hands messages back, and a lost ack means a redelivery.
		ExactlyOnceDelivery: false,
		// A durable consumer delivers in stream order, and with Concurrency 1
		// the next message is sent only after the previous one is settled
		// (TestNoAck checks exactly that). Redeliveries break the order, and
		// so do several subscribers sharing a durable, hence ...
		GuaranteedOrder: true,
		// ... the order is promised for one subscriber only.
		GuaranteedOrderWithSingleSubscriber: true,
		// Messages live in the stream, across Subscriber instances.
		Persistent: true,
		// Subscribers without a group share the durable derived from the
		// topic: a new one continues where the durable is, it does not replay
		// the stream (that is what a new Durable, i.e. a group, does).
		NewSubscriberReceivesOldMessages: false,
		// No command can restart an in-process server; reconnects are covered
		// by TestSubscriber_survives_a_server_restart with embedded Restart.
		RestartServiceCommand: nil,
		// Any number of Subscribers run side by side.
		RequireSingleInstance: false,
		// A context does not travel over NATS.
		ContextPreserved: false,
		// The full sizes (5000 messages over 50 subscribers, 10000 published
		// messages...) run in well under a minute on 2 cores under -race.
		ForceShort: false,
	}
}

// conformanceUUIDHeader carries the Watermill message UUID.
const conformanceUUIDHeader = "Watermill-Uuid"

// rawUnmarshaler is the pass-through decoding of the suite: payload as is,
// every header but the UUID and Nats-* ones as metadata.
type rawUnmarshaler struct{}

func (rawUnmarshaler) Unmarshal(m natsjs.Msg) (*message.Message, error) {
	h := m.Headers()
	wm := message.NewMessage(h.Get(conformanceUUIDHeader), m.Data())
	for k, vs := range h {
		if k == conformanceUUIDHeader || strings.HasPrefix(k, "Nats-") || len(vs) == 0 {
			continue
		}
		wm.Metadata[k] = vs[0]
	}
	return wm, nil
}

// rawPublisher is a Watermill publisher on plain nats.go: one synchronous
// JetStream publish per message, Nats-Msg-Id = UUID so that the suite's
// publish retries are stored once.
type rawPublisher struct{ js natsjs.JetStream }

func (p rawPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		nm := nats.NewMsg(topic)
		nm.Data = m.Payload
		for k, v := range m.Metadata {
			nm.Header[k] = []string{v}
		}
		nm.Header[conformanceUUIDHeader] = []string{m.UUID}
		nm.Header[nats.MsgIdHdr] = []string{m.UUID}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := p.js.PublishMsg(ctx, nm)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (rawPublisher) Close() error { return nil }

// suiteSubscriber adapts Close to the suite, which requires a nil error even
// when it closes with a message it deliberately never acked
// (TestMessageCtx): the Subscriber nacks such a message at the deadline and
// says so with ErrCloseTimeout. Only that error is forgiven.
type suiteSubscriber struct{ *jetstream.Subscriber }

func (s suiteSubscriber) Close() error {
	if err := s.Subscriber.Close(); err != nil && !errors.Is(err, jetstream.ErrCloseTimeout) {
		return err
	}
	return nil
}

// conformanceConfig is the Subscriber config of the suite: one memory stream
// per topic (the suite's topics are valid stream names), created by
// SubscribeInitialize.
func conformanceConfig(durable string) jetstream.SubscriberConfig {
	return jetstream.SubscriberConfig{
		Durable:        durable,
		StreamForTopic: func(topic string) string { return topic },
		InitializeStream: func(topic string) natsjs.StreamConfig {
			return natsjs.StreamConfig{Subjects: []string{topic}, Storage: natsjs.MemoryStorage}
		},
		Unmarshaler: rawUnmarshaler{},
		// The suite expects a Nack'd message back at once (like gochannel);
		// the delay policy has its own tests.
		NakDelay: func(uint64) time.Duration { return 0 },
		// TestContinueAfterErrors nacks every message about 6 times.
		MaxDeliver: -1,
		// Only TestMessageCtx closes with an unsettled message; waiting for
		// it longer proves nothing.
		CloseTimeout: time.Second,
	}
}

func conformanceConstructors(srv *eventstest.Server) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		nc := srv.Connect(t)
		js, err := natsjs.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := jetstream.NewSubscriber(nc, conformanceConfig(group))
		if err != nil {
			t.Fatal(err)
		}
		return rawPublisher{js: js}, suiteSubscriber{sub}
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "") }, withGroup
}

func TestPubSub_conformance(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubSub, withGroup := conformanceConstructors(srv)
	tests.TestPubSub(t, conformanceFeatures(), pubSub, withGroup)
}
