package router_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// Check the lease before acting: a router process frozen past AckWait (a
// GC pause, a VM migration, SIGSTOP) holds nothing any more when it wakes;
// the broker gave its events to the group's other processes.

const frozenURLEnv = "JETEVENTS_FROZEN_URL"

func frozenConfig() router.Config {
	cfg := fastConfig()
	cfg.AckWait = 2 * time.Second
	cfg.FetchBatch = 100
	cfg.CloseTimeout = 10 * time.Second
	return cfg
}

// runFrozen is the process the test freezes: it prints "start <id>" as each
// handler starts, and its stats when SIGTERM stops it.
func runFrozen(url string) int {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "frozen:", err)
		return 1
	}
	cfg := frozenConfig()
	// Its warnings (each held event dropped on waking) go to stdout, one
	// JSON line each, for the test to count.
	var out sync.Mutex
	cfg.Logger = middleware.NewSlogLogger(slog.New(slog.NewJSONHandler(lockedWriter{&out, os.Stdout}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	r, err := router.New(nc, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "frozen:", err)
		return 1
	}
	r.Group("shared", "auth.user.*").On("user.created", func(_ context.Context, e *envelope.Event) error {
		out.Lock()
		fmt.Println("start", e.ID)
		out.Unlock()
		// Slow, so that the freeze most likely finds it inside a handler
		// (which finishes on waking: not a stale start) or waiting, rather
		// than between its lease check and its first line.
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-r.Running()
		out.Lock()
		fmt.Println("running")
		out.Unlock()
	}()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "frozen:", err)
		return 1
	}
	out.Lock()
	fmt.Printf("stats handled=%d\n", r.Stats().Handled)
	out.Unlock()
	return 0
}

// lockedWriter serialises writes to w with the handler's prints.
type lockedWriter struct {
	mu *sync.Mutex
	w  *os.File
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

const leaseRanOut = "Held event's lease ran out before its handler started"

// childLines reads a child's stdout line by line, stamping each with the
// time it was read.
type childLines struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
}

func (c *childLines) read(r *bufio.Scanner) {
	for r.Scan() {
		c.mu.Lock()
		c.lines = append(c.lines, r.Text())
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
	}
}

func (c *childLines) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (c *childLines) has(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// starts returns the ids whose handler started, and those read after t.
func (c *childLines) starts(after time.Time) (all, late map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all, late = map[string]bool{}, map[string]bool{}
	for i, l := range c.lines {
		if id, ok := strings.CutPrefix(l, "start "); ok {
			all[id] = true
			if c.at[i].After(after) {
				late[id] = true
			}
		}
	}
	return all, late
}

func TestRouter_process_woken_from_a_freeze_past_AckWait_handles_none_of_the_events_it_held(t *testing.T) {
	e := newEnv(t)

	// Process A, the one frozen: another OS process on the shared durable.
	a := exec.Command(os.Args[0], "-test.run=^$")
	a.Env = append(os.Environ(), frozenURLEnv+"="+e.srv.URL)
	stdout, err := a.StdoutPipe()
	require.NoError(t, err)
	a.Stderr = os.Stderr
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Process.Kill(); _ = a.Wait() })
	var out childLines
	go out.read(bufio.NewScanner(stdout))
	require.Eventually(t, func() bool { return out.has("running") }, 30*time.Second, 10*time.Millisecond)

	// Process B, this one, on the same durable.
	var bSeen sync.Map
	b, err := router.New(e.srv.Connect(t), frozenConfig())
	require.NoError(t, err)
	b.Group("shared", "auth.user.*").On("user.created", func(_ context.Context, ev *envelope.Event) error {
		bSeen.Store(ev.ID, true)
		time.Sleep(time.Millisecond)
		return nil
	})
	start(t, b)

	const n = 1000
	ids := make([]string, 0, n)
	for i := range n {
		ev := userEvent("user.created", map[string]any{"i": i})
		ids = append(ids, ev.ID)
		e.publish(t, "auth.user.created", ev)
	}
	// A holds a full queue when it freezes.
	require.Eventually(t, func() bool { all, _ := out.starts(time.Time{}); return len(all) >= 5 }, 30*time.Second, time.Millisecond)
	require.NoError(t, a.Process.Signal(syscall.SIGSTOP))
	frozenAt := time.Now()

	// B takes over what A held once AckWait passed, and handles everything.
	require.Eventually(t, func() bool {
		all, _ := out.starts(time.Time{})
		for _, id := range ids {
			if _, ok := bSeen.Load(id); !ok && !all[id] {
				return false
			}
		}
		return true
	}, 60*time.Second, 10*time.Millisecond, "every event handled while A is frozen")
	e.waitSettled(t, "shared")
	// Frozen well past AckWait (2s) before it wakes.
	if d := 7*time.Second - time.Since(frozenAt); d > 0 {
		time.Sleep(d) // the fault under test is a process frozen for 7s
	}
	woke := time.Now()
	require.NoError(t, a.Process.Signal(syscall.SIGCONT))

	// A wakes and finds its held events' leases gone; then it stops.
	require.Eventually(t, func() bool { return out.count(leaseRanOut) > 0 }, 30*time.Second, 10*time.Millisecond,
		"A's workers found a held event whose lease ran out")
	require.NoError(t, a.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return out.has("stats ") }, 30*time.Second, 10*time.Millisecond)
	_, late := out.starts(woke)
	var stale []string
	for id := range late {
		if _, ok := bSeen.Load(id); ok {
			stale = append(stale, id)
		}
	}
	assert.Zero(t, len(stale), "events A handled after waking that B had handled meanwhile: %v", stale)
	var handled int
	out.mu.Lock()
	for _, l := range out.lines {
		if strings.HasPrefix(l, "stats ") {
			_, err := fmt.Sscanf(l, "stats handled=%d", &handled)
			require.NoError(t, err)
		}
	}
	out.mu.Unlock()
	t.Logf("A: %d handled before the freeze, %d held events dropped on waking (lease ran out)", handled, out.count(leaseRanOut))
}
