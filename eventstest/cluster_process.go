package eventstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
)

// Why child processes: an in-process server can only be shut down, which
// flushes and closes its store; a crash (SIGKILL, OOM, power loss) does
// neither, and that is what the cluster's durability claims have to
// survive. The child is the test binary itself, re-executed with envNode
// set: RunServerIfChild, first thing in TestMain, turns it into a server
// before any test runs. No separate binary to build, and the server code is
// exactly the one the tests link.
const (
	// envNode holds the child's nodeSpec as JSON.
	envNode = "JETEVENTS_EVENTSTEST_NODE"
	// hookMarker is the child's first line: proof that the hook ran, so
	// that a child which ran the tests instead is reported as such.
	hookMarker = "eventstest: cluster node process"
	// killWait bounds the wait for a SIGKILLed process to be reaped.
	killWait = 30 * time.Second
	// outputTail is how much of a child's output is kept for messages.
	outputTail = 64 << 10
)

// RunServerIfChild turns the process into a cluster node when it is one of
// the server processes NewCluster starts, and never returns then: it runs
// the server until it is killed, its stdin (a pipe from the test process)
// closes, or it gets SIGTERM / SIGINT. In every other process it returns at
// once and does nothing. Call it first thing in TestMain of every package
// that uses NewCluster:
//
//	func TestMain(m *testing.M) {
//		eventstest.RunServerIfChild()
//		os.Exit(m.Run())
//	}
func RunServerIfChild() {
	spec, ok := os.LookupEnv(envNode)
	if !ok {
		return
	}
	os.Exit(runChild(spec))
}

func runChild(specJSON string) int {
	fmt.Println(hookMarker)
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "eventstest: cluster node: bad %s: %v\n", envNode, err)
		return 2
	}
	srv, err := embedded.Start(spec.config())
	if err != nil {
		fmt.Fprintf(os.Stderr, "eventstest: cluster node %s: %v\n", spec.Name, err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	eof := make(chan struct{})
	go func() {
		// The test process holds the other end: EOF means it is gone.
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
	srv.Stop()
	return 0
}

// processRunner runs a node as a child process.
type processRunner struct {
	spec  nodeSpec
	spawn *spawner
	out   tailBuffer // every run's output, in order
	// exe and args replace the test binary and "-test.run=^$" (tests of
	// the missing-hook report only).
	exe  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	run    *runOutput
	done   chan struct{} // closed once the current process is reaped
	killed bool
}

func (p *processRunner) start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil && !p.killed && !isClosed(p.done) {
		p.mu.Unlock()
		return nil
	}
	spec, err := json.Marshal(p.spec)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
	}
	exe, args := p.exe, p.args
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			p.mu.Unlock()
			return fmt.Errorf("%w: cannot find the test binary: %w", ErrNotReady, err)
		}
		// -test.run=^$: a binary without the hook runs no test (instead
		// of every test again, recursively) and exits, which start reports.
		args = []string{"-test.run=^$"}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envNode+"="+string(spec))
	if _, err := cmd.StdinPipe(); err != nil { // closed by Wait
		p.mu.Unlock()
		return fmt.Errorf("%w: stdin pipe: %w", ErrNotReady, err)
	}
	run := &runOutput{tail: &p.out}
	cmd.Stdout, cmd.Stderr = run, run
	cmd.SysProcAttr = childSysProcAttr()
	if err := p.spawn.start(cmd); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: start %s: %w", ErrNotReady, exe, err)
	}
	done := make(chan struct{})
	go func() {
		// Owned by the runner: ends when the process does (kill, or the
		// test process's exit through Pdeathsig / stdin EOF).
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.run, p.done, p.killed = cmd, run, done, false
	p.mu.Unlock()
	return p.waitListening(ctx, done)
}

// waitListening returns once the node's client port accepts connections,
// or fails when the process exits or ctx ends.
func (p *processRunner) waitListening(ctx context.Context, done <-chan struct{}) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.spec.Port))
	t := time.NewTicker(clusterPoll)
	defer t.Stop()
	for {
		d := net.Dialer{Timeout: time.Second}
		if conn, err := d.DialContext(ctx, "tcp", addr); err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-done:
			if !p.ranHook() {
				return fmt.Errorf("%w (call it first thing in TestMain, or set ClusterConfig.InProcess); output:\n%s", ErrNoChildHook, p.output())
			}
			return fmt.Errorf("%w: %s exited before listening on %s; output:\n%s", ErrNotReady, p.spec.Name, addr, p.output())
		case <-ctx.Done():
			return fmt.Errorf("%w: %s not listening on %s: %w", ErrNotReady, p.spec.Name, addr, ctx.Err())
		case <-t.C:
		}
	}
}

func (p *processRunner) kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd != nil {
		p.killed = true
	}
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL %s (pid %d): %w", p.spec.Name, cmd.Process.Pid, err)
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("%s (pid %d) not reaped %s after SIGKILL", p.spec.Name, cmd.Process.Pid, killWait)
	}
}

func (p *processRunner) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.killed && !isClosed(p.done)
}

func (p *processRunner) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.killed && isClosed(p.done)
}

func (p *processRunner) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *processRunner) output() string { return p.out.String() }

// ranHook reports whether the current process printed hookMarker.
func (p *processRunner) ranHook() bool {
	p.mu.Lock()
	run := p.run
	p.mu.Unlock()
	return run != nil && run.sawHook()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// spawner starts every child process of a cluster from one goroutine
// locked to its OS thread. Linux's Pdeathsig fires when the *thread* that
// forked the child ends, not the process: forking from an arbitrary
// goroutine's thread could kill a node in the middle of a test if the Go
// runtime retired that thread. The locked thread lives until close, and
// ends then (the goroutine exits locked), which kills any child still
// alive.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread() // never unlocked: see spawner
	defer close(s.done)
	for r := range s.reqs {
		r.err <- r.cmd.Start()
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	s.reqs <- r
	return <-r.err
}

func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// runOutput is one run's stdout and stderr: appended to the node's tail,
// and its first bytes watched for hookMarker.
type runOutput struct {
	tail *tailBuffer

	mu   sync.Mutex
	head []byte
	hook bool
}

func (r *runOutput) Write(b []byte) (int, error) {
	r.mu.Lock()
	if !r.hook && len(r.head) < 4*len(hookMarker) {
		r.head = append(r.head, b...)
		r.hook = bytes.Contains(r.head, []byte(hookMarker))
	}
	r.mu.Unlock()
	return r.tail.Write(b)
}

func (r *runOutput) sawHook() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hook
}

// tailBuffer keeps the last outputTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - outputTail; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// inProcessRunner runs a node inside the test process; kill is a Shutdown.
type inProcessRunner struct {
	spec nodeSpec

	mu  sync.Mutex
	srv *embedded.Server
	up  bool
}

func (r *inProcessRunner) start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		return nil
	}
	if r.srv == nil {
		srv, err := embedded.Start(r.spec.config())
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotReady, r.spec.Name, err)
		}
		r.srv = srv
	} else if err := r.srv.Restart(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotReady, r.spec.Name, err)
	}
	r.up = true
	return nil
}

func (r *inProcessRunner) kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up {
		r.srv.Stop()
		r.up = false
	}
	return nil
}

func (r *inProcessRunner) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

func (r *inProcessRunner) exited() bool   { return false }
func (r *inProcessRunner) output() string { return "" }
func (r *inProcessRunner) pid() int       { return 0 }
