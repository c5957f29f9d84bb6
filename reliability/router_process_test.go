//go:build reliability

package reliability_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// A router process is this test binary re-executed with envRouter set:
// runRouterIfChild, in TestMain, turns it into a router consuming one
// durable through the public API (jetstream.Connect, router.New) until it
// is SIGKILLed, gets SIGTERM, or its stdin (a pipe from the test) closes.
// Its handler stores a result record (subject resultsPrefix.<name>, data the
// event id) and waits for the stream's ack before it returns: so an event
// the router acked has a record, and an event without one was never handled.
const (
	envRouter     = "JETEVENTS_RELIABILITY_ROUTER"
	routerMarker  = "reliability: router process"
	routerRunning = "reliability: router running"
	// resultsStream stores the result records of router processes.
	resultsStream = "RESULTS"
	resultsPrefix = "results"
	// procWait bounds a router process's start and its graceful stop.
	procWait = time.Minute
)

// routerSpec configures a router process.
type routerSpec struct {
	Name        string // also the subject token of its results
	URL         string
	Stream      string
	Durable     string
	Filter      string
	EventType   string
	AckWait     time.Duration
	Heartbeat   time.Duration
	Concurrency int
	FetchBatch  int
	MaxDeliver  int
	// Idempotency turns router.Config.Idempotency on: a jetstream.KVStore
	// in bucket idempotencyBucket, shared by every process.
	Idempotency bool
}

// idempotencyBucket is the KV bucket of router processes with Idempotency.
const idempotencyBucket = "RELIABILITY_PROCESSED"

// runRouterIfChild runs the router process and exits when the process is
// one; it returns at once otherwise.
func runRouterIfChild() {
	spec, ok := os.LookupEnv(envRouter)
	if !ok {
		return
	}
	os.Exit(runRouterChild(spec))
}

func runRouterChild(specJSON string) int {
	fmt.Println(routerMarker)
	var spec routerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s: %v\n", envRouter, err)
		return 2
	}
	nc, err := jetstream.Connect(spec.URL, jetstream.WithName(spec.Name), jetstream.WithLogger(watermill.NopLogger{}),
		jetstream.WithReconnectBackoff(20*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: connect: %v\n", spec.Name, err)
		return 1
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: jetstream: %v\n", spec.Name, err)
		return 1
	}
	cfg := router.Config{
		Stream:      spec.Stream,
		AckWait:     spec.AckWait,
		Heartbeat:   spec.Heartbeat,
		Concurrency: spec.Concurrency,
		FetchBatch:  spec.FetchBatch,
		MaxDeliver:  spec.MaxDeliver,
		Logger:      routerLogger(),
	}
	if spec.Idempotency {
		ctx, cancel := context.WithTimeout(context.Background(), procWait)
		store, err := jetstream.NewKVStore(ctx, nc, jetstream.KVStoreConfig{Bucket: idempotencyBucket})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: idempotency store: %v\n", spec.Name, err)
			return 1
		}
		cfg.Idempotency = store
	}
	rt, err := router.New(nc, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: router: %v\n", spec.Name, err)
		return 1
	}
	subject := resultsPrefix + "." + spec.Name
	rt.Group(spec.Durable, spec.Filter).On(spec.EventType, func(ctx context.Context, e *envelope.Event) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		// Stored before the handler returns, hence before the router acks:
		// a failure is the handler's error, and the event is retried.
		_, err := js.Publish(ctx, subject, []byte(e.ID))
		return err
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
		fmt.Println(routerRunning)
	case err := <-runErr:
		fmt.Fprintf(os.Stderr, "%s: Run at start: %v\n", spec.Name, err)
		return 1
	case <-time.After(procWait):
		fmt.Fprintf(os.Stderr, "%s: not running after %s\n", spec.Name, procWait)
		return 1
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the test holds the other end
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	case err := <-runErr:
		fmt.Fprintf(os.Stderr, "%s: Run returned by itself: %v\n", spec.Name, err)
		return 1
	}
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: Run: %v\n", spec.Name, err)
			return 1
		}
	case <-time.After(procWait):
		fmt.Fprintf(os.Stderr, "%s: Run still running %s after the stop\n", spec.Name, procWait)
		return 1
	}
	fmt.Printf("%s: stopped, handled %d\n", spec.Name, rt.Stats().Handled)
	return 0
}

// routerProc is a router process seen from the test.
type routerProc struct {
	name    string
	cmd     *exec.Cmd
	out     *tailWriter
	running chan struct{} // closed when the process printed routerRunning
	done    chan struct{} // closed once the process is reaped
	waitErr error         // the process's exit, set before done closes

	killMu sync.Mutex
	killed bool
}

// startRouterProc starts a router process and waits until its router runs
// (bound to its durable), for at most procWait. It is SIGKILLed when the
// test ends, and its output printed if the test failed.
func startRouterProc(t *testing.T, spec routerSpec) *routerProc {
	t.Helper()
	return startChildProc(t, spec.Name, envRouter, spec, routerRunning)
}

// startChildProc starts this test binary again as a child process of the
// kind env selects (its TestMain hook reads spec, as JSON, from env) and
// waits until it prints the line ready, for at most procWait. It is
// SIGKILLed when the test ends, and its output printed if the test failed.
func startChildProc(t *testing.T, name, env string, spec any, ready string) *routerProc {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	js, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+string(js))
	_, err = cmd.StdinPipe() // closed by Wait, or by the kernel when the test dies: EOF ends the child
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &routerProc{name: name, cmd: cmd, out: &tailWriter{}, running: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = p.out
	require.NoError(t, cmd.Start())
	scanned := make(chan struct{})
	go func() { // ends at the process's exit (EOF on its stdout)
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.out.Write([]byte(line + "\n"))
			if line == ready {
				once.Do(func() { close(p.running) })
			}
		}
	}()
	go func() {
		<-scanned // Wait closes stdout: read it all first
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.kill()
		if t.Failed() {
			t.Logf("process %s output:\n%s", p.name, p.out.String())
		}
	})
	select {
	case <-p.running:
	case <-p.done:
		t.Fatalf("process %s exited before running: %v\n%s", p.name, p.waitErr, p.out.String())
	case <-time.After(procWait):
		t.Fatalf("process %s not running after %s\n%s", p.name, procWait, p.out.String())
	}
	return p
}

// kill SIGKILLs the process and returns once it is reaped (at most
// procWait). Killing a dead process does nothing.
func (p *routerProc) kill() error {
	p.killMu.Lock()
	p.killed = true
	p.killMu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(procWait):
		return fmt.Errorf("%s not reaped %s after SIGKILL", p.name, procWait)
	}
}

// stop asks the process to shut down (SIGTERM) and waits for a clean exit.
func (p *routerProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w\n%s", p.name, p.waitErr, p.out.String())
		}
		return nil
	case <-time.After(procWait):
		return fmt.Errorf("%s still running %s after SIGTERM", p.name, procWait)
	}
}

// exitedByItself reports whether the process ended without being killed.
func (p *routerProc) exitedByItself() bool {
	p.killMu.Lock()
	defer p.killMu.Unlock()
	select {
	case <-p.done:
		return !p.killed
	default:
		return false
	}
}

// tailWriter keeps the last 64 KiB written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if over := len(w.buf) - 64<<10; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// readResults reads the results stream from its start with an ordered
// consumer and calls fn(router, event id) for every record, on one
// goroutine, until the returned stop is called.
func readResults(t *testing.T, nc *nats.Conn, fn func(router, id string)) (stop func()) {
	t.Helper()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, resultsStream, natsjs.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := cons.Consume(func(m natsjs.Msg) {
		fn(strings.TrimPrefix(m.Subject(), resultsPrefix+"."), string(m.Data()))
	})
	require.NoError(t, err)
	var once sync.Once
	stop = func() { once.Do(cc.Stop) }
	t.Cleanup(stop)
	return stop
}

// consumerDrained reports whether durable has nothing pending and nothing
// unacked: every event it delivered was acked.
func consumerDrained(js natsjs.JetStream, stream, durable string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return false, err.Error()
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, err.Error()
	}
	state := fmt.Sprintf("pending %d, ack pending %d, redelivered %d, ack floor %d, delivered %d",
		info.NumPending, info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream, info.Delivered.Stream)
	return info.NumPending == 0 && info.NumAckPending == 0, state
}
