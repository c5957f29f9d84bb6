package bench

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/subscriber"
)

// subscriberConsume measures our Subscriber bound to the trial's durable
// with the shared consumer settings; fetchBatch 0 keeps the default.
func subscriberConsume(fetchBatch func(p Params) int) consumeSetup {
	return func(_ context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		nc, err := env.Connect("bench-jetevents-consume")
		if err != nil {
			return nil, nil, err
		}
		cc := ConsumerConfig(durable, s.Subject, p)
		tr, err := jetstream.NewTransport(nc, jetstream.TransportConfig{})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		sub, err := subscriber.New(tr, subscriber.Config{
			Stream:         s.Name,
			Durable:        durable,
			FilterSubjects: []string{cc.FilterSubject},
			AckWait:        cc.AckWait,
			MaxAckPending:  cc.MaxAckPending,
			FetchBatch:     fetchBatch(p),
			Logger:         watermill.NopLogger{},
		})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return consumeWatermill(sub, nc, s.Subject, p.N, record)
	}
}

var jeteventsConsume = Variant{
	Op: OpConsume, Impl: ImplJetevents,
	What:    "bare Subscriber, no handler or data decoding (Concurrency 1, FetchBatch = raw's PullMaxMessages): Subscribe channel + msg.Ack",
	prepare: consumeTrial(subscriberConsume(func(p Params) int { return p.PullBatch })),
}

// ImplJeteventsDefaults is our Subscriber with its default FetchBatch
// (2 x Concurrency = 2), to show what the default costs against the
// comparable setting (FetchBatch = raw's PullMaxMessages).
const ImplJeteventsDefaults Impl = "jetevents-defaults"

var jeteventsDefaultsConsume = Variant{
	Op: OpConsume, Impl: ImplJeteventsDefaults,
	What:    "bare Subscriber with its defaults (Concurrency 1, FetchBatch 2): Subscribe channel + msg.Ack",
	prepare: consumeTrial(subscriberConsume(func(Params) int { return 0 })),
}

// consumeWatermill measures a Watermill subscriber on nc: Subscribe, then
// receive and ack n messages. The subscription lives until the returned
// close (which also closes nc), not just the measured run, so that the last
// acks are not raced by a cancelled context.
func consumeWatermill(sub message.Subscriber, nc *nats.Conn, subject string, n int, record func(string)) (func(context.Context) error, func() error, error) {
	subCtx, cancel := context.WithCancel(context.Background())
	closeFn := func() error {
		cancel()
		err := sub.Close()
		nc.Close()
		return err
	}
	return func(ctx context.Context) error {
		ch, err := sub.Subscribe(subCtx, subject)
		if err != nil {
			return err
		}
		for range n {
			select {
			case msg, ok := <-ch:
				if !ok {
					return fmt.Errorf("subscription closed early")
				}
				record(msg.UUID)
				msg.Ack()
			case <-ctx.Done():
				return fmt.Errorf("consume: %w", ctx.Err())
			}
		}
		return nil
	}, closeFn, nil
}
