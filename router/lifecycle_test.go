package router_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// The crash test re-executes this test binary as a consumer process whose
// handler kills the process on every delivery (see TestMain).
const (
	idemURLEnv   = "JETEVENTS_IDEMPOTENT_URL"
	crashURLEnv  = "JETEVENTS_CRASHER_URL"
	crashExit    = 3
	crashDurable = "crashy"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(crashURLEnv); url != "" {
		os.Exit(runCrasher(url))
	}
	if url := os.Getenv(idemURLEnv); url != "" {
		os.Exit(runIdempotent(url))
	}
	if url := os.Getenv(frozenURLEnv); url != "" {
		os.Exit(runFrozen(url))
	}
	os.Exit(m.Run())
}

// runCrasher consumes as the crashy durable; its handler exits the process.
func runCrasher(url string) int {
	nc, err := nats.Connect(url, nats.Timeout(20*time.Second), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crasher:", err)
		return 1
	}
	cfg := crashConfig()
	r, err := router.New(nc, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crasher:", err)
		return 1
	}
	r.Group(crashDurable, "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
		os.Exit(crashExit) // dies mid-handler: no ack, no nak, no dead letter
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "crasher:", err)
	}
	return 1 // the handler was never reached
}

func crashConfig() router.Config {
	cfg := fastConfig()
	cfg.MaxDeliver = 2
	cfg.AckWait = 300 * time.Millisecond
	return cfg
}

func TestRouter_event_that_kills_its_process_on_every_delivery_is_dead_lettered_by_the_attempt_limit(t *testing.T) {
	e := newEnv(t)
	ev := userEvent("user.created", map[string]any{"user_id": 666})
	e.publish(t, "auth.user.created", ev)

	// Crashing processes, one after the other, until the event is dead-lettered.
	// Each delivery kills the process that gets it; the delivery after
	// MaxDeliver (2) handler attempts goes to the dead-letter stream without
	// the handler being called (the server's max_deliver is unlimited, so it
	// never gives up on the event first). A redelivery can also go to a dead
	// process's pull request before the server notices it is gone: that
	// still counts as a delivery.
	crashes := 0
	for run := 1; len(e.deadLetters(t)) == 0; run++ {
		require.LessOrEqual(t, run, 10, "no dead letter after %d crashing processes", run-1)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashURLEnv+"="+e.srv.URL)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(30 * time.Second)
	wait:
		for {
			select {
			case err := <-exited:
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "crasher %d: %s", run, out.String())
				require.Equal(t, crashExit, exit.ExitCode(), "crasher %d must die in the handler: %s", run, out.String())
				crashes++
				break wait
			case <-time.After(20 * time.Millisecond):
				if len(e.deadLetters(t)) > 0 {
					_ = cmd.Process.Kill()
					<-exited
					break wait
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("crasher %d neither died nor saw a dead letter: %s", run, out.String())
			}
		}
	}
	require.GreaterOrEqual(t, crashes, 1, "the handler killed its process")

	dl := e.deadLetters(t)
	require.Len(t, dl, 1)
	assert.Equal(t, middleware.ReasonMaxDeliver, header(dl[0], middleware.HeaderReason))
	assert.Contains(t, header(dl[0], middleware.HeaderError), middleware.ErrAttemptsExhausted.Error())
	assert.Equal(t, ev.ID, header(dl[0], "ce-id"))
	assert.Equal(t, "auth.user.created", header(dl[0], middleware.HeaderSubject))
	assert.Equal(t, crashDurable, header(dl[0], middleware.HeaderConsumer))
	deliveries, err := strconv.Atoi(header(dl[0], middleware.HeaderDeliveries))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, deliveries, 3, "dead-lettered on the delivery after the last handler attempt")
	got, err := envelope.Decode(dl[0].Data, 0)
	require.NoError(t, err)
	assert.Equal(t, ev.ID, got.ID, "the original event, unchanged")
}

// lockedBuffer collects a subprocess's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// idempotentConfig is the router both processes of the idempotency test run.
func idempotentConfig(nc *nats.Conn) (router.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store, err := jetstream.NewKVStore(ctx, nc, jetstream.KVStoreConfig{Bucket: "PROCESSED", TTL: time.Hour})
	if err != nil {
		return router.Config{}, err
	}
	cfg := fastConfig()
	cfg.Idempotency = store
	return cfg, nil
}

// runIdempotent is the second process: it prints "handled <id>" per call
// and stops cleanly on SIGTERM.
func runIdempotent(url string) int {
	nc, err := nats.Connect(url, nats.Timeout(20*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "idempotent:", err)
		return 1
	}
	defer nc.Close()
	cfg, err := idempotentConfig(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idempotent:", err)
		return 1
	}
	cfg.Logger = middleware.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	r, err := router.New(nc, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idempotent:", err)
		return 1
	}
	r.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
		fmt.Printf("handled %s\n", ev.ID)
		return nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-r.Running()
		fmt.Println("running")
	}()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "idempotent:", err)
		return 1
	}
	return 0
}

func TestRouter_same_event_delivered_twice_is_handled_once_across_two_processes(t *testing.T) {
	e := newEnv(t)
	ev := userEvent("user.created", map[string]any{"user_id": 7})

	// Process A (this one) handles the event and records it in the bucket.
	cfg, err := idempotentConfig(e.srv.Connect(t))
	require.NoError(t, err)
	a, err := router.New(e.srv.Connect(t), cfg)
	require.NoError(t, err)
	handledByA := make(chan string, 4)
	a.Group("users", "auth.user.*").On("user.created", func(ctx context.Context, got *envelope.Event) error {
		handledByA <- got.ID
		return nil
	})
	stopA := start(t, a)
	e.publish(t, "auth.user.created", ev)
	select {
	case id := <-handledByA:
		require.Equal(t, ev.ID, id)
	case <-time.After(20 * time.Second):
		t.Fatal("process A did not handle the event")
	}
	e.waitSettled(t, "users")
	require.NoError(t, stopA())

	// Process B: another OS process, same durable, same KV bucket.
	b := exec.Command(os.Args[0], "-test.run=^$")
	b.Env = append(os.Environ(), idemURLEnv+"="+e.srv.URL)
	var out lockedBuffer
	b.Stdout, b.Stderr = &out, &out
	require.NoError(t, b.Start())
	bDone := make(chan error, 1)
	go func() { bDone <- b.Wait() }()
	t.Cleanup(func() { _ = b.Process.Kill() })
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "running") }, 30*time.Second, 10*time.Millisecond, out.String())

	// The producer retries with a fresh message id: the stream stores the
	// event a second time; then an unrelated event follows.
	raw, err := marshaler.Default().EventToNATS("auth.user.created", ev, marshaler.Relations{})
	require.NoError(t, err)
	raw.Header.Set("Nats-Msg-Id", "retry-"+ev.ID)
	ack, err := e.srv.JS.PublishMsg(ctxT(t), raw)
	require.NoError(t, err)
	require.False(t, ack.Duplicate, "stored twice")
	other := userEvent("user.created", map[string]any{"user_id": 8})
	e.publish(t, "auth.user.created", other)

	require.Eventually(t, func() bool { return strings.Contains(out.String(), "handled "+other.ID) }, 30*time.Second, 10*time.Millisecond, out.String())
	e.waitSettled(t, "users")
	require.NoError(t, b.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-bDone:
		require.NoError(t, err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("process B did not stop")
	}
	assert.NotContains(t, out.String(), "handled "+ev.ID, "process B skipped the copy process A had handled")
	assert.Empty(t, e.deadLetters(t))
}

func TestRouter_cancelling_Run_with_slow_handlers_in_flight_loses_nothing(t *testing.T) {
	tests := []struct {
		name        string
		finishFirst bool // handlers finish within CloseTimeout
	}{
		{"handlers finish within the close timeout", true},
		{"handlers outlive the close timeout and are redelivered after restart", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			const n = 10
			cfg := fastConfig()
			cfg.Concurrency = n
			cfg.AckWait = 5 * time.Second
			cfg.CloseTimeout = 300 * time.Millisecond
			if tt.finishFirst {
				cfg.CloseTimeout = 20 * time.Second
			}
			r1, err := router.New(e.srv.Connect(t), cfg)
			require.NoError(t, err)
			inFlight := make(chan string, n)
			release := make(chan struct{})
			var mu sync.Mutex
			completed := map[string]int{}
			cancelled := 0
			r1.Group("slow", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
				inFlight <- ev.ID
				select { // a well-behaved handler: it gives up when its ctx ends
				case <-release:
				case <-ctx.Done():
					mu.Lock()
					cancelled++
					mu.Unlock()
					return ctx.Err()
				}
				mu.Lock()
				completed[ev.ID]++
				mu.Unlock()
				return nil
			})
			stop := start(t, r1)

			ids := map[string]bool{}
			for i := 0; i < n; i++ {
				ev := userEvent("user.created", map[string]any{"i": i})
				ids[ev.ID] = true
				e.publish(t, "auth.user.created", ev)
			}
			for i := 0; i < n; i++ {
				select {
				case <-inFlight:
				case <-time.After(20 * time.Second):
					t.Fatalf("only %d handlers in flight", i)
				}
			}

			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			if tt.finishFirst {
				// Shutdown has begun: fetching stops (the consumer sees no
				// more pull requests), yet the handlers' contexts stay live.
				require.Eventually(t, func() bool {
					c, err := e.srv.JS.Consumer(ctxT(t), stream, "slow")
					if err != nil {
						return false
					}
					info, err := c.Info(ctxT(t))
					return err == nil && info.NumWaiting == 0
				}, 20*time.Second, 10*time.Millisecond)
				select {
				case err := <-stopped:
					t.Fatalf("Run returned with handlers in flight: %v", err)
				default:
				}
				close(release) // they finish while Run is shutting down
				require.NoError(t, <-stopped, "clean shutdown")
				e.waitSettled(t, "slow")
				mu.Lock()
				assert.Len(t, completed, n, "every in-flight handler finished")
				assert.Zero(t, cancelled, "no handler's context was cancelled by the shutdown")
				mu.Unlock()
				return
			}
			err = <-stopped
			assert.ErrorIs(t, err, router.ErrShutdown, "the close deadline passed")
			close(release) // too late: their messages were nacked, not acked

			// Restart: every event is handled (again).
			r2, err := router.New(e.srv.Connect(t), cfg)
			require.NoError(t, err)
			var again calls
			r2.Group("slow", "auth.user.*").On("user.created", func(ctx context.Context, ev *envelope.Event) error {
				again.add(ev.ID)
				return nil
			})
			start(t, r2)
			e.waitSettled(t, "slow")
			require.Eventually(t, func() bool { return again.n() >= n }, 20*time.Second, 10*time.Millisecond)
			again.mu.Lock()
			defer again.mu.Unlock()
			for _, id := range again.ids {
				assert.True(t, ids[id])
			}
			seen := map[string]bool{}
			for _, id := range again.ids {
				seen[id] = true
			}
			assert.Len(t, seen, n, "every in-flight event was redelivered and handled after restart")
			assert.Empty(t, e.deadLetters(t))
		})
	}
}
