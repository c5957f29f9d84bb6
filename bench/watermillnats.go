package bench

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// watermill-nats v2.1.3 pkg/jetstream, used as documented with a shared
// connection. Its publisher's marshaler is fixed (NATSMarshaler: metadata ->
// headers, plus _watermill_message_uuid), so events go in as the Watermill
// messages marshaler.ToMessage builds (done inside the measured loop, as a
// user holding events would), with Nats-Msg-Id added to the metadata so that
// the server de-duplicates as for the other variants. It has no async publish;
// Publish(topic, msgs...) publishes one message after the other, each waiting
// for its ack, and serves as its batch.

// watermillMsg turns e into the Watermill message watermill-nats publishes.
func watermillMsg(m *marshaler.Marshaler, e *envelope.Event) (*message.Message, error) {
	msg, err := m.ToMessage(e)
	if err != nil {
		return nil, err
	}
	msg.Metadata.Set(nats.MsgIdHdr, e.ID)
	return msg, nil
}

// newWatermillPublisher builds the publisher on nc. Its Close would close nc,
// which the trial owns, so it is never called.
func newWatermillPublisher(nc *nats.Conn) (*wmjs.Publisher, error) {
	return wmjs.NewPublisher(wmjs.PublisherConfig{Conn: nc, Logger: watermill.NopLogger{}})
}

var watermillSync = Variant{
	Op: OpSync, Impl: ImplWatermill,
	What: "ToMessage + Publisher.Publish(topic, msg)",
	prepare: publishTrial("bench-wm-sync", func(_ context.Context, nc *nats.Conn, s Stream, _ Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		pub, err := newWatermillPublisher(nc)
		if err != nil {
			return nil, nil, err
		}
		m := marshaler.Default()
		return func(context.Context) error {
			for _, e := range events {
				msg, err := watermillMsg(m, e)
				if err != nil {
					return err
				}
				if err := pub.Publish(s.Subject, msg); err != nil {
					return fmt.Errorf("publish %s: %w", e.ID, err)
				}
			}
			return nil
		}, nil, nil
	}),
}

var watermillBatch = Variant{
	Op: OpBatch, Impl: ImplWatermill,
	What: "ToMessage each + Publisher.Publish(topic, batch...)",
	prepare: publishTrial("bench-wm-batch", func(_ context.Context, nc *nats.Conn, s Stream, p Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		pub, err := newWatermillPublisher(nc)
		if err != nil {
			return nil, nil, err
		}
		m := marshaler.Default()
		msgs := make([]*message.Message, 0, p.Batch)
		return func(context.Context) error {
			for start := 0; start < len(events); start += p.Batch {
				msgs = msgs[:0]
				for _, e := range events[start:min(start+p.Batch, len(events))] {
					msg, err := watermillMsg(m, e)
					if err != nil {
						return err
					}
					msgs = append(msgs, msg)
				}
				if err := pub.Publish(s.Subject, msgs...); err != nil {
					return fmt.Errorf("publish batch at %d: %w", start, err)
				}
			}
			return nil
		}, nil, nil
	}),
}

var watermillConsume = Variant{
	Op: OpConsume, Impl: ImplWatermill,
	What: "Subscriber (AckAsync, our unmarshaler) Subscribe channel + msg.Ack",
	prepare: consumeTrial(func(_ context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		// Its own connection: the subscriber's Close drains the connection.
		nc, err := env.Connect("bench-wm-consume")
		if err != nil {
			return nil, nil, err
		}
		sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
			Conn:   nc,
			Logger: watermill.NopLogger{},
			// Plain ack, as for the other variants (its default is a
			// double ack that waits for the server).
			AckAsync: true,
			// Decode exactly as ours does.
			Unmarshaler: marshaler.JetStream{Marshaler: marshaler.Default()},
			// Bind to the durable created with the shared settings: its
			// own initializers create ephemeral or work-queue consumers
			// with a config of their choosing.
			ResourceInitializer: func(ctx context.Context, js natsjs.JetStream, _ string) (natsjs.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
				c, err := js.Consumer(ctx, s.Name, durable)
				return c, nil, err
			},
			ConsumeOptions: []natsjs.PullConsumeOpt{natsjs.PullMaxMessages(p.PullBatch)},
		})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return consumeWatermill(sub, nc, s.Subject, p.N, record)
	}),
}
