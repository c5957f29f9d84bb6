package eventstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const internalWait = 60 * time.Second

// gone reports whether pid is no longer a live process: it does not exist,
// or it is a zombie waiting for a parent that does not reap (PID 1 of a
// container may not).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) S ...: the state follows the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func TestCluster_cleanup_kills_every_node_process(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := NewCluster(t, 3)
		for _, n := range c.nodes {
			pid := n.runner.pid()
			require.NotZero(t, pid)
			require.False(t, gone(pid))
			pids = append(pids, pid)
		}
	})
	require.Len(t, pids, 3)
	for _, pid := range pids {
		assert.True(t, gone(pid), "pid %d outlived its test", pid)
	}
}

func TestCluster_node_processes_die_with_the_test_process(t *testing.T) {
	ports, err := freePorts(1)
	require.NoError(t, err)
	spec, err := json.Marshal(nodeSpec{Name: "orphan", Port: ports[0], StoreDir: t.TempDir()})
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)

	// A stand-in test process (this binary in orphan-parent mode) starts a
	// node; SIGKILLing it must take the node down too.
	parent := exec.Command(exe, "-test.run=^$")
	parent.Env = append(os.Environ(), envOrphanParent+"="+string(spec))
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	var stderr tailBuffer
	parent.Stderr = &stderr
	require.NoError(t, parent.Start())
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })

	pids := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var pid int
			if _, err := fmt.Sscanf(sc.Text(), "node pid %d", &pid); err == nil {
				pids <- pid
			}
		}
		close(pids)
	}()
	var pid int
	select {
	case p, ok := <-pids:
		require.True(t, ok, "the stand-in parent exited: %s", stderr.String())
		pid = p
	case <-time.After(internalWait):
		t.Fatalf("no node pid from the stand-in parent: %s", stderr.String())
	}
	require.False(t, gone(pid), "node running")

	require.NoError(t, parent.Process.Kill())
	_ = parent.Wait()
	require.Eventually(t, func() bool { return gone(pid) }, internalWait, 10*time.Millisecond, "node pid %d survived its parent", pid)
}

func TestCluster_start_reports_a_binary_without_the_hook(t *testing.T) {
	exe, err := exec.LookPath("true")
	require.NoError(t, err)
	ports, err := freePorts(1)
	require.NoError(t, err)
	s := newSpawner()
	defer s.close()
	r := &processRunner{spec: nodeSpec{Name: "n", Port: ports[0]}, spawn: s, exe: exe}
	ctx, cancel := context.WithTimeout(context.Background(), internalWait)
	defer cancel()
	err = r.start(ctx)
	require.ErrorIs(t, err, ErrNoChildHook)
	assert.Contains(t, err.Error(), "TestMain")
	assert.True(t, r.exited())
	assert.False(t, r.running())
}
