package bench

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// ImplJeteventsMessage is our Watermill adapter (MessagePublisher), measured
// on the batch operation beside watermill-nats' Publisher, which has the same
// interface.
const ImplJeteventsMessage Impl = "jetevents-message"

// newPublisher builds our publisher on nc with the trial's window. Async
// failures are counted, not logged, and fail the run.
func newPublisher(nc *nats.Conn, p Params, failed *atomic.Int64) (*jetstream.Publisher, error) {
	return jetstream.NewPublisher(nc,
		jetstream.PublisherConfig{MaxPending: p.Window, Logger: watermill.NopLogger{}, OnAsyncError: func(jetstream.AsyncError) { failed.Add(1) }})
}

func publisherSetup(body func(pub *jetstream.Publisher, s Stream, p Params, events []*envelope.Event, failed *atomic.Int64) func(context.Context) error) publishSetup {
	return func(_ context.Context, nc *nats.Conn, s Stream, p Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		failed := new(atomic.Int64)
		pub, err := newPublisher(nc, p, failed)
		if err != nil {
			return nil, nil, err
		}
		return body(pub, s, p, events, failed), pub.Close, nil
	}
}

var jeteventsSync = Variant{
	Op: OpSync, Impl: ImplJetevents,
	What: "Publisher.Publish (validate + EventToNATS + PublishMsg)",
	prepare: publishTrial("bench-jetevents-sync", publisherSetup(func(pub *jetstream.Publisher, s Stream, _ Params, events []*envelope.Event, _ *atomic.Int64) func(context.Context) error {
		return func(ctx context.Context) error {
			for _, e := range events {
				if err := pub.Publish(ctx, s.Subject, e); err != nil {
					return err
				}
			}
			return nil
		}
	})),
}

var jeteventsAsync = Variant{
	Op: OpAsync, Impl: ImplJetevents,
	What: "Publisher.PublishAsync each (MaxPending = window) + Flush",
	prepare: publishTrial("bench-jetevents-async", publisherSetup(func(pub *jetstream.Publisher, s Stream, _ Params, events []*envelope.Event, failed *atomic.Int64) func(context.Context) error {
		return func(ctx context.Context) error {
			for _, e := range events {
				if err := pub.PublishAsync(ctx, s.Subject, e); err != nil {
					return err
				}
			}
			if err := pub.Flush(ctx); err != nil {
				return err
			}
			if n := failed.Load(); n > 0 {
				return fmt.Errorf("%d async publishes failed", n)
			}
			return nil
		}
	})),
}

var jeteventsBatch = Variant{
	Op: OpBatch, Impl: ImplJetevents,
	What: "Publisher.PublishBatch(subject, batch...) (MaxPending = window)",
	prepare: publishTrial("bench-jetevents-batch", publisherSetup(func(pub *jetstream.Publisher, s Stream, p Params, events []*envelope.Event, _ *atomic.Int64) func(context.Context) error {
		return func(ctx context.Context) error {
			for start := 0; start < len(events); start += p.Batch {
				if err := pub.PublishBatch(ctx, s.Subject, events[start:min(start+p.Batch, len(events))]...); err != nil {
					return err
				}
			}
			return nil
		}
	})),
}

var jeteventsMessageBatch = Variant{
	Op: OpBatch, Impl: ImplJeteventsMessage,
	What: "ToMessage each + MessagePublisher.Publish(topic, batch...)",
	prepare: publishTrial("bench-jetevents-message-batch", publisherSetup(func(pub *jetstream.Publisher, s Stream, p Params, events []*envelope.Event, _ *atomic.Int64) func(context.Context) error {
		mp := pub.MessagePublisher()
		m := marshaler.Default()
		msgs := make([]*message.Message, 0, p.Batch)
		return func(context.Context) error {
			for start := 0; start < len(events); start += p.Batch {
				msgs = msgs[:0]
				for _, e := range events[start:min(start+p.Batch, len(events))] {
					msg, err := m.ToMessage(e)
					if err != nil {
						return err
					}
					msgs = append(msgs, msg)
				}
				if err := mp.Publish(s.Subject, msgs...); err != nil {
					return err
				}
			}
			return nil
		}
	})),
}
