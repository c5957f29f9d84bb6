package bench

import (
	"context"
	"encoding/json"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ImplRawConsumeJSON is the baseline of the router rows: what a user writes
// without this library. nats.go's Consume (pull batch 500), encoding/json
// into the envelope struct with typed data (UserEnvelope), Ack each message.
// None of this library's decoders is involved.
const ImplRawConsumeJSON Impl = "raw-consume-json"

// checkData reports a handler that did not get the data it was sent, so that
// the trial fails rather than measure a decoder that skipped the work.
func checkData(d UserCreated) error {
	if d.UserID != 12345 || d.Email != "ada@example.com" || d.Role != "admin" {
		return fmt.Errorf("data decoded as %+v", d)
	}
	return nil
}

var rawConsumeJSON = Variant{
	Op: OpRouter, Impl: ImplRawConsumeJSON,
	What: "user's baseline: consumer.Consume (PullMaxMessages 500) + encoding/json.Unmarshal into a struct (time.Time timestamp, typed data) + msg.Ack",
	prepare: consumeTrial(func(ctx context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		nc, cons, err := rawConsumer(ctx, env, "bench-raw-consume-json", s, durable)
		if err != nil {
			return nil, nil, err
		}
		var (
			cc       natsjs.ConsumeContext
			handled  int
			failures failureLog
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
				// Callbacks of one Consume run one at a time. A failed
				// message counts too, so that the run ends and says so.
				defer func() {
					if handled++; handled == p.N {
						close(done)
					}
				}()
				var e UserEnvelope
				if err := json.Unmarshal(m.Data(), &e); err != nil {
					failures.add(err)
					return
				}
				if err := checkData(e.Data); err != nil {
					failures.add(err)
					return
				}
				record(e.ID)
				if err := m.Ack(); err != nil {
					failures.add(err)
				}
			}, natsjs.PullMaxMessages(p.PullBatch))
			if err != nil {
				return err
			}
			if err := waitDone(ctx, done, "consume"); err != nil {
				return err
			}
			return failures.err()
		}, closeFn, nil
	}),
}
