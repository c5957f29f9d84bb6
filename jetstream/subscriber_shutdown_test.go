package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/jetstream"
)

type ctxKey struct{}

// stopWays are the two ways a subscription is stopped: the Subscribe ctx
// (the router's Run ctx) is canceled, or Close is called. stop returns a
// function giving Close's result: with the canceled ctx, Close is called only
// then (after the test let the handler finish), as a router would at the end.
var stopWays = []struct {
	name string
	stop func(sub *jetstream.Subscriber, cancel context.CancelFunc) (closed func() <-chan error)
	// closeRuns: Close runs through the whole stop, so it reports what
	// happened at the deadline (with a canceled ctx, the subscription may
	// have ended, and logged it, before Close is called).
	closeRuns bool
}{
	{
		name: "Subscribe ctx canceled",
		stop: func(sub *jetstream.Subscriber, cancel context.CancelFunc) func() <-chan error {
			cancel()
			return func() <-chan error {
				closed := make(chan error, 1)
				go func() { closed <- sub.Close() }()
				return closed
			}
		},
	},
	{
		name:      "Close",
		closeRuns: true,
		stop: func(sub *jetstream.Subscriber, _ context.CancelFunc) func() <-chan error {
			closed := make(chan error, 1)
			go func() { closed <- sub.Close() }()
			return func() <-chan error { return closed }
		},
	},
}

func TestSubscriber_shutdown_lets_an_in_flight_handler_finish(t *testing.T) {
	for _, way := range stopWays {
		t.Run(way.name, func(t *testing.T) {
			f := newSubFixture(t)
			ids := f.publish(testSubject, 1)
			sub := f.subscriber(jetstream.SubscriberConfig{Durable: "graceful", CloseTimeout: waitFor})
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "kept"))
			defer cancel()
			ch, err := sub.Subscribe(ctx, testSubject)
			require.NoError(t, err)
			m := receive(t, ch)
			require.Equal(t, ids[0], m.UUID)

			// The handler: waits for its ctx or for the test to release it.
			release := make(chan struct{})
			outcome := make(chan string, 1)
			go func() {
				select {
				case <-m.Context().Done():
					outcome <- "handler ctx canceled: " + context.Cause(m.Context()).Error()
				case <-release:
					outcome <- "released"
				}
			}()

			closed := way.stop(sub, cancel)
			// The channel closes once fetching stopped and nothing more can
			// be sent: the shutdown is under way, the handler still running.
			requireClosed(t, ch)
			require.NoError(t, m.Context().Err(), "the shutdown canceled an in-flight handler's ctx")
			assert.Equal(t, "kept", m.Context().Value(ctxKey{}), "the Subscribe ctx's values are kept")
			_, ok := jetstream.RawMessage(m.Context())
			assert.True(t, ok)

			close(release)
			select {
			case got := <-outcome:
				require.Equal(t, "released", got)
			case <-time.After(waitFor):
				t.Fatal("handler did not finish")
			}
			require.True(t, m.Ack())
			select {
			case <-m.Context().Done(): // settled: its ctx ends
			case <-time.After(waitFor):
				t.Fatal("message ctx not canceled after Ack")
			}
			select {
			case err := <-closed():
				require.NoError(t, err, "the handler finished within CloseTimeout")
			case <-time.After(2 * waitFor):
				t.Fatal("Close did not return")
			}

			f.requireSettled("graceful")
			info := f.consumerInfo("graceful")
			assert.Zero(t, info.NumAckPending)
			assert.Equal(t, uint64(1), info.Delivered.Consumer, "exactly one delivery: acked, not redelivered")
			assert.Equal(t, uint64(1), info.AckFloor.Stream)
		})
	}
}

func TestSubscriber_shutdown_lets_an_in_flight_undecodable_hook_finish(t *testing.T) {
	for _, way := range stopWays {
		t.Run(way.name, func(t *testing.T) {
			f := newSubFixture(t)
			terminated := f.advisories("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testStream + ".hook")
			f.publishRaw(undecodableMsg(testSubject))

			called := make(chan context.Context, 1)
			release := make(chan struct{})
			sub := f.subscriber(jetstream.SubscriberConfig{
				Durable:      "hook",
				CloseTimeout: waitFor,
				OnUndecodable: func(ctx context.Context, _ natsjs.Msg, _ error) error {
					called <- ctx
					select {
					case <-ctx.Done():
						return context.Cause(ctx)
					case <-release:
						return nil // stored elsewhere
					}
				},
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := sub.Subscribe(ctx, testSubject)
			require.NoError(t, err)
			var hookCtx context.Context
			select {
			case hookCtx = <-called:
			case <-time.After(waitFor):
				t.Fatal("hook not called")
			}

			closed := way.stop(sub, cancel)
			requireClosed(t, ch)
			require.NoError(t, hookCtx.Err(), "the shutdown canceled the running hook's ctx")
			close(release)

			select {
			case adv := <-terminated:
				assert.EqualValues(t, 1, adv["stream_seq"])
			case <-time.After(waitFor):
				t.Fatal("the hook's success did not terminate the message")
			}
			select {
			case err := <-closed():
				require.NoError(t, err)
			case <-time.After(2 * waitFor):
				t.Fatal("Close did not return")
			}
			f.requireSettled("hook")
			assert.Equal(t, uint64(1), f.consumerInfo("hook").Delivered.Consumer, "exactly one delivery: termed, not redelivered")
		})
	}
}

func TestSubscriber_shutdown_cancels_and_nacks_a_handler_at_the_close_deadline(t *testing.T) {
	for _, way := range stopWays {
		t.Run(way.name, func(t *testing.T) {
			f := newSubFixture(t)
			ids := f.publish(testSubject, 1)
			logs := watermill.NewCaptureLogger()
			sub := f.subscriber(jetstream.SubscriberConfig{Durable: "deadline", CloseTimeout: 200 * time.Millisecond, Logger: logs})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := sub.Subscribe(ctx, testSubject)
			require.NoError(t, err)
			m := receive(t, ch)

			closed := way.stop(sub, cancel)
			// The handler never finishes: its ctx ends at the deadline.
			select {
			case <-m.Context().Done():
				assert.ErrorIs(t, context.Cause(m.Context()), jetstream.ErrCloseTimeout)
			case <-time.After(waitFor):
				t.Fatal("message ctx not canceled at the close deadline")
			}
			select {
			case err := <-closed():
				if way.closeRuns || err != nil {
					require.ErrorIs(t, err, jetstream.ErrCloseTimeout)
				}
			case <-time.After(2 * waitFor):
				t.Fatal("Close did not return")
			}
			// Either way the subscription has ended and said why.
			assert.True(t, logs.HasError(jetstream.ErrCloseTimeout), "abandoned message not reported")
			requireClosed(t, ch)
			m.Ack() // too late: it was nacked

			// Nacked for immediate redelivery: a new subscriber gets it now.
			next := f.subscriber(jetstream.SubscriberConfig{Durable: "deadline"})
			again := receive(t, f.subscribe(next, testSubject))
			assert.Equal(t, ids[0], again.UUID)
			assert.Equal(t, uint64(2), jetstream.DeliveryAttempt(again))
			require.True(t, again.Ack())
			f.requireSettled("deadline")
		})
	}
}
