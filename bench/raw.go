package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// The raw baseline is what a user would hand-write with nats.go: encode the
// envelope (Event.MarshalJSON), build the message with the wire contract's
// headers, publish with the jetstream package. No validation beyond what
// MarshalJSON does, no percent-encoding (the benchmark's values need none).

// RawMsg builds the NATS message a user would write by hand for e on subject:
// the same payload and header set as the library's publisher.
func RawMsg(subject string, e *envelope.Event) (*nats.Msg, error) {
	data, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	h := nats.Header{
		marshaler.HeaderMsgID:         {e.ID},
		marshaler.HeaderContentType:   {marshaler.ContentTypeJSON},
		marshaler.HeaderSpecVersion:   {marshaler.SpecVersion},
		marshaler.HeaderID:            {e.ID},
		marshaler.HeaderType:          {e.Type},
		marshaler.HeaderSource:        {e.Source},
		marshaler.HeaderTime:          {envelope.FormatTime(e.Timestamp)},
		marshaler.HeaderOrganization:  {e.OrganizationID},
		marshaler.HeaderSchemaVersion: {e.SchemaVersion},
	}
	return &nats.Msg{Subject: subject, Header: h, Data: data}, nil
}

var rawSync = Variant{
	Op: OpSync, Impl: ImplRaw,
	What: "MarshalJSON + headers by hand + js.PublishMsg",
	prepare: publishTrial("bench-raw-sync", func(_ context.Context, nc *nats.Conn, s Stream, _ Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		js, err := natsjs.New(nc)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error {
			for _, e := range events {
				msg, err := RawMsg(s.Subject, e)
				if err != nil {
					return err
				}
				if _, err := js.PublishMsg(ctx, msg); err != nil {
					return fmt.Errorf("publish %s: %w", e.ID, err)
				}
			}
			return nil
		}, nil, nil
	}),
}

// publishAsyncRetry publishes msg asynchronously; when the window stays full
// longer than nats.go's stall wait it tries again (the message was not sent),
// as a user who must not lose events would.
func publishAsyncRetry(ctx context.Context, js natsjs.JetStream, msg *nats.Msg) (natsjs.PubAckFuture, error) {
	for {
		f, err := js.PublishMsgAsync(msg)
		if !errors.Is(err, natsjs.ErrTooManyStalledMsgs) {
			return f, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

var rawAsync = Variant{
	Op: OpAsync, Impl: ImplRaw,
	What: "MarshalJSON + headers by hand + js.PublishMsgAsync (window) + PublishAsyncComplete",
	prepare: publishTrial("bench-raw-async", func(_ context.Context, nc *nats.Conn, s Stream, p Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		var failed atomic.Int64
		js, err := natsjs.New(nc,
			natsjs.WithPublishAsyncMaxPending(p.Window),
			natsjs.WithPublishAsyncErrHandler(func(natsjs.JetStream, *nats.Msg, error) { failed.Add(1) }))
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error {
			for _, e := range events {
				msg, err := RawMsg(s.Subject, e)
				if err != nil {
					return err
				}
				if _, err := publishAsyncRetry(ctx, js, msg); err != nil {
					return fmt.Errorf("publish %s: %w", e.ID, err)
				}
			}
			if err := waitDone(ctx, js.PublishAsyncComplete(), "wait for acks"); err != nil {
				return err
			}
			if n := failed.Load(); n > 0 {
				return fmt.Errorf("%d async publishes failed", n)
			}
			return nil
		}, nil, nil
	}),
}

var rawBatch = Variant{
	Op: OpBatch, Impl: ImplRaw,
	What: "per batch: js.PublishMsgAsync each (window) then wait for each future",
	prepare: publishTrial("bench-raw-batch", func(_ context.Context, nc *nats.Conn, s Stream, p Params, events []*envelope.Event) (func(context.Context) error, func() error, error) {
		js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(p.Window))
		if err != nil {
			return nil, nil, err
		}
		futures := make([]natsjs.PubAckFuture, 0, p.Batch)
		return func(ctx context.Context) error {
			for start := 0; start < len(events); start += p.Batch {
				batch := events[start:min(start+p.Batch, len(events))]
				futures = futures[:0]
				for _, e := range batch {
					msg, err := RawMsg(s.Subject, e)
					if err != nil {
						return err
					}
					f, err := publishAsyncRetry(ctx, js, msg)
					if err != nil {
						return fmt.Errorf("publish %s: %w", e.ID, err)
					}
					futures = append(futures, f)
				}
				// Per-event results, as PublishBatch returns them.
				var errs []error
				for i, f := range futures {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						errs = append(errs, fmt.Errorf("publish %s: %w", batch[i].ID, err))
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if len(errs) > 0 {
					return errors.Join(errs...)
				}
			}
			return nil
		}, nil, nil
	}),
}

// rawConsume is the transport baseline of the subscriber rows: it decodes
// with this library's envelope decoder, as the Subscriber does, so that those
// rows compare transports. A user's hand-written consumer is
// rawConsumeJSON, the baseline of the router rows.
var rawConsume = Variant{
	Op: OpConsume, Impl: ImplRawOurDecoder,
	What: "transport baseline, not a user's code: consumer.Consume + this library's Event.UnmarshalJSON + msg.Ack",
	prepare: consumeTrial(func(ctx context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		nc, cons, err := rawConsumer(ctx, env, "bench-raw-consume", s, durable)
		if err != nil {
			return nil, nil, err
		}
		var (
			cc       natsjs.ConsumeContext
			handled  int
			failures atomic.Int64
			done     = make(chan struct{})
		)
		closeFn := func() error {
			if cc != nil {
				cc.Stop()
			}
			nc.Close()
			return nil
		}
		return func(ctx context.Context) error {
			cc, err = cons.Consume(func(m natsjs.Msg) {
				// The Subscriber decodes the envelope; so does its baseline.
				var e envelope.Event
				if err := e.UnmarshalJSON(m.Data()); err != nil {
					failures.Add(1)
					return
				}
				record(e.ID)
				if err := m.Ack(); err != nil {
					failures.Add(1)
				}
				// Callbacks of one Consume run one at a time.
				handled++
				if handled == p.N {
					close(done)
				}
			}, natsjs.PullMaxMessages(p.PullBatch))
			if err != nil {
				return err
			}
			if err := waitDone(ctx, done, "consume"); err != nil {
				return err
			}
			if n := failures.Load(); n > 0 {
				return fmt.Errorf("%d messages failed to decode or ack", n)
			}
			return nil
		}, closeFn, nil
	}),
}

// rawConsumer is the prologue of every hand-written consumer row: its own
// connection, bound to the trial's durable with nats.go's jetstream API.
func rawConsumer(ctx context.Context, env *Env, name string, s Stream, durable string) (*nats.Conn, natsjs.Consumer, error) {
	nc, err := env.Connect(name)
	if err != nil {
		return nil, nil, err
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	cons, err := js.Consumer(ctx, s.Name, durable)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, cons, nil
}
