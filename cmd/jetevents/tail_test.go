package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTail_stopped_with_Ctrl_C_exits_0_and_leaves_no_consumer runs the
// command as a process and interrupts it as a terminal's Ctrl-C does
// (SIGINT): tail is meant to run until interrupted, so that is a normal end,
// exit status 0 with nothing on stderr but its start line, and its consumer
// is deleted.
func TestTail_stopped_with_Ctrl_C_exits_0_and_leaves_no_consumer(t *testing.T) {
	srv := newServer(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "tail", "-server", srv.URL, "-subject", "auth.>")
	cmd.Env = append(os.Environ(), runAsMainEnv+"=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "tailing") }, 20*time.Second, 10*time.Millisecond,
		"tail started: %s", stderr.String())
	require.Eventually(t, func() bool { return countConsumers(t, srv, "AUTH_EVENTS") == 2 }, 10*time.Second, 10*time.Millisecond,
		"its consumer exists")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))

	select {
	case <-exited:
		err = waitErr
	case <-time.After(20 * time.Second):
		t.Fatalf("tail did not exit after SIGINT; stderr: %s", stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("exit status %d after Ctrl-C, want 0; stderr: %s", ee.ExitCode(), stderr.String())
	}
	require.NoError(t, err)
	assert.Equal(t, "tailing new events of AUTH_EVENTS on auth.> (Ctrl-C to stop)\n", stderr.String(), "no error line")
	assert.Equal(t, 1, countConsumers(t, srv, "AUTH_EVENTS"), "only the durable is left")
}
