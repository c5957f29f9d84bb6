package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// serverProcess is `jetevents server` running as a process (the test
// binary standing in for the command).
type serverProcess struct {
	cmd  *exec.Cmd
	url  string
	out  *syncBuffer // everything it printed
	done chan error
}

func startServerProcess(t *testing.T, env []string, args ...string) *serverProcess {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, append([]string{"server"}, args...)...)
	cmd.Env = append(append(os.Environ(), runAsMainEnv+"=1"), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &serverProcess{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	listening := make(chan string, 1)
	go func() {
		var url string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			p.out.Write([]byte(l + "\n"))
			if m := regexp.MustCompile(`listening on (nats://\S+)`).FindStringSubmatch(l); m != nil {
				url = m[1]
			}
			if strings.HasPrefix(l, "  stop:") { // the last line of the banner
				listening <- url
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.url = <-listening:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("jetevents server exited: %v\n%s", err, p.out.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("jetevents server did not say it listens:\n%s", p.out.String())
	}
	return p
}

// stop sends SIGTERM and waits for the process to exit; it returns its exit code.
func (p *serverProcess) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("jetevents server did not stop on SIGTERM:\n%s", p.out.String())
		return -1
	}
}

// TestServer_restarted_keeps_streams_consumers_and_messages: the default
// store is a per-port folder under $XDG_DATA_HOME, printed at start; a
// SIGTERM stops the server cleanly; the next start on the same port has
// the streams, the consumer with its acks, and the messages.
func TestServer_restarted_keeps_streams_consumers_and_messages(t *testing.T) {
	data := t.TempDir()
	port := freePort(t)
	env := []string{"XDG_DATA_HOME=" + data}
	wantStore := filepath.Join(data, "jetevents", strconv.Itoa(port))

	first := startServerProcess(t, env, "-port", strconv.Itoa(port))
	assert.Contains(t, first.out.String(), "store:   "+wantStore+" (kept across restarts")
	ctx := testCtx(t)
	mustRun(t, ctx, "streams", "apply", "-f", specFile, "-server", first.url)
	for _, typ := range []string{"user.created", "user.deleted"} {
		mustRun(t, ctx, "publish", "auth."+typ, "-type", typ, "-server", first.url)
	}
	// The durable handles the first event and acks it.
	nc, err := nats.Connect(first.url)
	require.NoError(t, err)
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)
	msg, err := cons.Next(natsjs.FetchMaxWait(5 * time.Second))
	require.NoError(t, err)
	require.NoError(t, msg.DoubleAck(ctx))
	nc.Close()

	assert.Equal(t, 0, first.stop(t), first.out.String())
	assert.Contains(t, first.out.String(), "stopped; store kept in "+wantStore)

	second := startServerProcess(t, env, "-port", strconv.Itoa(port))
	defer second.stop(t)
	nc, err = nats.Connect(second.url)
	require.NoError(t, err)
	defer nc.Close()
	js, err = natsjs.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err, "the stream survived the restart")
	assert.Equal(t, uint64(2), st.CachedInfo().State.Msgs, "its messages too")
	_, err = js.Stream(ctx, "DLQ")
	require.NoError(t, err)
	cons, err = js.Consumer(ctx, "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err, "the consumer survived the restart")
	info := cons.CachedInfo()
	assert.Equal(t, uint64(1), info.AckFloor.Stream, "with its acks")
	assert.Equal(t, uint64(1), info.NumPending)
	out := mustRun(t, ctx, "streams", "apply", "-f", specFile, "-server", second.url)
	assert.Contains(t, out, "3 specs: 0 created, 0 updated, 3 unchanged")
}

// runServer runs `jetevents server args...` in-process until it says it
// listens, then stops it; it returns what it printed and its error.
func runServer(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"server"}, args...), out, errOut) }()
	ready := false
	for !ready {
		select {
		case err := <-done:
			return out.String(), errOut.String(), err
		case <-time.After(10 * time.Millisecond):
			ready = strings.Contains(out.String(), "listening on")
		case <-ctx.Done():
			t.Fatal("server neither started nor failed")
		}
	}
	cancel()
	err = <-done
	return out.String(), errOut.String(), err
}

// TestServer_startup_failures_are_reported_at_once_with_their_cause: no
// wait for a server that will never be ready, and a sentence saying what
// is wrong and what to do.
func TestServer_startup_failures_are_reported_at_once_with_their_cause(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))

	tests := []struct {
		name string
		args []string
		kind error
		want []string
	}{
		{"port in use", []string{"-port", busyPort, "-temp"}, errServerStart,
			[]string{"server: cannot listen on 127.0.0.1:" + busyPort + ": the port is in use", "pick another port with -port"}},
		{"bad port", []string{"-port", "70000"}, errUsage, []string{"-port 70000 is not a port (0 to 65535"}},
		{"negative port", []string{"-port", "-2"}, errUsage, []string{"-port -2 is not a port"}},
		{"unknown host", []string{"-host", "bogus.invalid", "-temp"}, errServerStart,
			[]string{`cannot listen on host "bogus.invalid"`, "use an address of this machine: -host 127.0.0.1"}},
		{"address not of this machine", []string{"-host", "192.0.2.1", "-temp"}, errServerStart,
			[]string{"cannot listen on 192.0.2.1:4222: 192.0.2.1 is not an address of this machine"}},
		{"store that cannot be created", []string{"-store", filepath.Join(file, "store"), "-port", "0"}, errServerStart,
			[]string{"cannot create store folder " + filepath.Join(file, "store") + ": not a directory", "pick a folder you can write with -store DIR"}},
		{"-temp with -store", []string{"-temp", "-store", t.TempDir()}, errUsage, []string{"-temp and -store exclude each other"}},
		{"unknown log level", []string{"-log", "loud"}, errUsage, []string{`-log "loud": want off, error, warn, info, debug or trace`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runServer(t, tt.args...)
			require.ErrorIs(t, err, tt.kind)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "not ready")
		})
	}

	t.Run("as a process: exit status 1, one line on stderr", func(t *testing.T) {
		exe, err := os.Executable()
		require.NoError(t, err)
		cmd := exec.CommandContext(testCtx(t), exe, "server", "-port", busyPort, "-temp")
		cmd.Env = append(os.Environ(), runAsMainEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 1, ee.ExitCode())
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), stderr.String())
		assert.True(t, strings.HasPrefix(stderr.String(), "jetevents: server: cannot listen on"), stderr.String())
	})
}

func TestServer_log_levels_and_temporary_store(t *testing.T) {
	t.Run("-log info shows the server's own log", func(t *testing.T) {
		_, stderr, err := runServer(t, "-port", "0", "-log", "info")
		require.NoError(t, err)
		assert.Contains(t, stderr, "[INF] Server is ready")
	})
	t.Run("-log off shows nothing", func(t *testing.T) {
		_, stderr, err := runServer(t, "-port", "0", "-log", "off")
		require.NoError(t, err)
		assert.Empty(t, stderr)
	})
	t.Run("-port 0 without -store uses a temporary store, removed on exit", func(t *testing.T) {
		stdout, _, err := runServer(t, "-port", "0")
		require.NoError(t, err)
		m := regexp.MustCompile(`store:   (\S+) \(temporary: removed on exit\)`).FindStringSubmatch(stdout)
		require.NotNil(t, m, stdout)
		_, statErr := os.Stat(m[1])
		assert.ErrorIs(t, statErr, os.ErrNotExist)
		assert.Contains(t, stdout, "stopped; temporary store removed")
	})
	t.Run("-store keeps what it is given", func(t *testing.T) {
		dir := t.TempDir()
		stdout, _, err := runServer(t, "-port", "0", "-store", dir)
		require.NoError(t, err)
		assert.Contains(t, stdout, "store:   "+dir+" (kept across restarts")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.NotEmpty(t, entries, "the JetStream store is in the folder")
	})
}
