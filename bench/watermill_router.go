package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ImplWatermillRouter is what a Watermill user runs today: watermill-nats
// v2.1.3's jetstream Subscriber (its default unmarshaler, plain ack, pull
// batch 500) in a plain Watermill message.Router, with a handler that
// decodes the payload with encoding/json and returns nil.
const ImplWatermillRouter Impl = "watermill-nats-router"

var watermillRouter = Variant{
	Op: OpRouter, Impl: ImplWatermillRouter,
	What: "watermill-nats Subscriber (AckAsync, default unmarshaler, PullMaxMessages 500) in a message.Router; handler: encoding/json into the struct, return nil",
	prepare: consumeTrial(func(_ context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		var (
			handled  atomic.Int64
			failures failureLog
			done     = make(chan struct{})
			once     sync.Once
		)
		wr, sub, nc, err := newWatermillRouter(env, s, durable, p.PullBatch, func(msg *message.Message) error {
			var e UserEnvelope
			if err := json.Unmarshal(msg.Payload, &e); err != nil {
				failures.add(err)
			} else if err := checkData(e.Data); err != nil {
				failures.add(fmt.Errorf("event %s: %w", e.ID, err))
			} else {
				record(e.ID)
			}
			if handled.Add(1) == int64(p.N) {
				once.Do(func() { close(done) })
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		var (
			cancel  context.CancelFunc = func() {}
			stopped                    = make(chan struct{})
			runErr  error
			started bool
		)
		closeFn := func() error {
			cancel()
			var errs []error
			// A router that never ran would wait its close timeout for
			// handlers that never started: close it only after Run.
			if started {
				select {
				case <-stopped:
					errs = append(errs, runErr, wr.Close())
				case <-time.After(time.Minute):
					errs = append(errs, errors.New("bench: watermill router did not stop within a minute"))
				}
			}
			errs = append(errs, sub.Close())
			nc.Close()
			return errors.Join(errs...)
		}
		return func(ctx context.Context) error {
			var runCtx context.Context
			runCtx, cancel = context.WithCancel(context.Background())
			started = true
			go func() {
				runErr = wr.Run(runCtx)
				close(stopped)
			}()
			select {
			case <-done:
			case <-stopped:
				return fmt.Errorf("watermill router ended after %d of %d events: %w", handled.Load(), p.N, runErr)
			case <-ctx.Done():
				return fmt.Errorf("watermill router: %d of %d events: %w", handled.Load(), p.N, ctx.Err())
			}
			return failures.err()
		}, closeFn, nil
	}),
}

// newWatermillRouter builds the watermill-nats row's router on its own
// connection (the subscriber's Close drains it): watermill-nats' Subscriber
// (no logger, plain ack, bound to the harness's durable, pull batch
// pullBatch) in a message.Router with handler as its one consumer handler.
func newWatermillRouter(env *Env, s Stream, durable string, pullBatch int, handler message.NoPublishHandlerFunc) (*message.Router, *wmjs.Subscriber, *nats.Conn, error) {
	nc, err := env.Connect("bench-wm-router")
	if err != nil {
		return nil, nil, nil, err
	}
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn: nc,
		// Its subscriber logs every message at Info ("got msg"); a
		// service at Info would silence it, so it gets no logger: the
		// competitor at its fastest.
		Logger: watermill.NopLogger{},
		// Plain ack, as for the other rows (its default is a double ack
		// that waits for the server).
		AckAsync: true,
		// Bound to the harness's durable (the shared settings); its own
		// initializers create consumers of their choosing.
		ResourceInitializer: func(ctx context.Context, js natsjs.JetStream, _ string) (natsjs.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
			c, err := js.Consumer(ctx, s.Name, durable)
			return c, nil, err
		},
		ConsumeOptions: []natsjs.PullConsumeOpt{natsjs.PullMaxMessages(pullBatch)},
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	wr, err := message.NewRouter(message.RouterConfig{}, ProductionLogger())
	if err != nil {
		_ = sub.Close()
		nc.Close()
		return nil, nil, nil, err
	}
	wr.AddConsumerHandler("bench", s.Subject, sub, handler)
	return wr, sub, nc, nil
}

// watermillLatencyConsumer runs the watermill-nats row's router and returns
// once it runs.
func watermillLatencyConsumer(_ context.Context, env *Env, s Stream, durable string, seen func(time.Time, string)) (func() error, error) {
	var failures failureLog
	wr, sub, nc, err := newWatermillRouter(env, s, durable, 500, func(msg *message.Message) error {
		var e UserEnvelope
		if err := json.Unmarshal(msg.Payload, &e); err != nil {
			failures.add(err)
			return nil
		}
		seen(e.Timestamp, e.ID)
		if err := checkData(e.Data); err != nil {
			failures.add(fmt.Errorf("event %s: %w", e.ID, err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var runErr error
	go func() {
		runErr = wr.Run(ctx)
		close(stopped)
	}()
	stop := func() error {
		cancel()
		var errs []error
		select {
		case <-stopped:
			errs = append(errs, runErr, wr.Close())
		case <-time.After(time.Minute):
			errs = append(errs, errors.New("bench: watermill router did not stop within a minute"))
		}
		errs = append(errs, sub.Close(), failures.err())
		nc.Close()
		return errors.Join(errs...)
	}
	select {
	case <-wr.Running():
		return stop, nil
	case <-stopped:
		return nil, errors.Join(fmt.Errorf("watermill router ended before running: %w", runErr), stop())
	case <-time.After(30 * time.Second):
		return nil, errors.Join(errors.New("watermill router not running after 30 s"), stop())
	}
}
