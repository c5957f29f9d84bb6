package bench

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ImplRawConc8Sleep1ms is the reference for ImplRouterConc8Sleep1ms: a
// user's raw consumer handing messages to 8 goroutines that each decode
// (encoding/json), sleep 1 ms and ack. It shows what 8 handlers of 1 ms reach
// on the machine: time.Sleep(1ms) itself takes longer than 1 ms (about
// 1.1 ms on Linux), so the ideal 8,000/s is out of reach for anyone.
const ImplRawConc8Sleep1ms Impl = "raw-conc8-sleep1ms"

var rawConc8Sleep1ms = Variant{
	Op: OpRouter, Impl: ImplRawConc8Sleep1ms,
	What: "reference: consumer.Consume (PullMaxMessages 500) feeding 8 goroutines: encoding/json + time.Sleep(1ms) + msg.Ack",
	prepare: consumeTrial(func(ctx context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		nc, cons, err := rawConsumer(ctx, env, "bench-raw-conc8-sleep1ms", s, durable)
		if err != nil {
			return nil, nil, err
		}
		var (
			cc       natsjs.ConsumeContext
			handled  atomic.Int64
			failures failureLog
			done     = make(chan struct{})
			once     sync.Once
			work     = make(chan natsjs.Msg)
			quit     = make(chan struct{})
			workers  sync.WaitGroup
		)
		handle := func(m natsjs.Msg) {
			defer func() {
				if handled.Add(1) == int64(p.N) {
					once.Do(func() { close(done) })
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
			time.Sleep(time.Millisecond)
			record(e.ID)
			if err := m.Ack(); err != nil {
				failures.add(err)
			}
		}
		closeFn := func() error {
			if cc != nil {
				cc.Stop()
			}
			close(quit)
			workers.Wait()
			nc.Close()
			return nil
		}
		return func(ctx context.Context) error {
			for range 8 {
				workers.Add(1)
				go func() {
					defer workers.Done()
					for {
						select {
						case m := <-work:
							handle(m)
						case <-quit:
							return
						}
					}
				}()
			}
			cc, err = cons.Consume(func(m natsjs.Msg) {
				select {
				case work <- m:
				case <-quit:
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

// SleepCost is the mean duration of time.Sleep(time.Millisecond) over n
// calls on this machine now: what one handler of the conc8-sleep1ms rows
// costs at the least, so 8/SleepCost is their ceiling.
func SleepCost(n int) time.Duration {
	start := time.Now()
	for range n {
		time.Sleep(time.Millisecond)
	}
	return time.Since(start) / time.Duration(max(n, 1))
}
