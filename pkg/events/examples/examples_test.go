package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

// build compiles one of the seed's example programs (they carry the
// `ignore` build tag so that `go build ./...` skips them, as `go run FILE`
// does not).
func build(t *testing.T, file string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(file, ".go"))
	cmd := exec.Command("go", "build", "-o", bin, file)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", file, out)
	return bin
}

// syncBuffer collects a process's output for polling.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSeedExamples_publisher_and_subscriber_work_together runs the seed's
// "Testing the Examples Together" section: the subscriber in one process, the
// publisher in another, on a server set up with the shipped stream specs.
func TestSeedExamples_publisher_and_subscriber_work_together(t *testing.T) {
	pubBin := build(t, "publisher_example.go")
	subBin := build(t, "subscriber_example.go")

	srv := eventstest.NewServer(t)
	specs, err := jetstream.LoadSpecs("../../../scripts/streams.yaml")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = jetstream.Apply(ctx, srv.JS, specs.All()...)
	require.NoError(t, err)
	env := append(os.Environ(), "NATS_URL="+srv.URL)

	// Terminal 1: the subscriber.
	sub := exec.Command(subBin)
	sub.Env = env
	var subOut syncBuffer
	sub.Stdout, sub.Stderr = &subOut, &subOut
	require.NoError(t, sub.Start())
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	t.Cleanup(func() { _ = sub.Process.Kill() })
	require.Eventually(t, func() bool { return strings.Contains(subOut.String(), "consuming auth.user.>") },
		30*time.Second, 20*time.Millisecond, "subscriber did not start: %s", subOut.String())

	// Terminal 2: the publisher.
	pub := exec.Command(pubBin)
	pub.Env = env
	out, err := pub.CombinedOutput()
	require.NoError(t, err, "publisher: %s", out)
	assert.Contains(t, string(out), "done: 3 events published")

	for _, want := range []string{"welcome mail", "email=user@example.com", "role changed", "from=admin to=viewer", "user deleted"} {
		require.Eventually(t, func() bool { return strings.Contains(subOut.String(), want) },
			30*time.Second, 20*time.Millisecond, "subscriber never logged %q: %s", want, subOut.String())
	}

	// Graceful shutdown on SIGTERM.
	require.NoError(t, sub.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-subDone:
		require.NoError(t, err, subOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("subscriber did not stop on SIGTERM: %s", subOut.String())
	}
	assert.Contains(t, subOut.String(), "stopped cleanly")
}

func TestSeedExamples_publisher_without_streams_says_how_to_create_them(t *testing.T) {
	pubBin := build(t, "publisher_example.go")
	srv := eventstest.NewServer(t)
	pub := exec.Command(pubBin)
	pub.Env = append(os.Environ(), "NATS_URL="+srv.URL)
	out, err := pub.CombinedOutput()
	require.Error(t, err, "no stream: the publisher must fail")
	assert.Contains(t, string(out), "setup-nats-streams.sh")
}

// TestSeedExamples_print_one_log_format: everything a program prints (its own
// lines, the connection's, the router's) is one slog text format, so that a
// reader (or a log shipper) parses one format, not slog lines mixed with the
// standard log package's "2006/01/02 15:04:05 INFO ...".
func TestSeedExamples_print_one_log_format(t *testing.T) {
	pubBin := build(t, "publisher_example.go")
	subBin := build(t, "subscriber_example.go")
	srv := eventstest.NewServer(t)
	specs, err := jetstream.LoadSpecs("../../../scripts/streams.yaml")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = jetstream.Apply(ctx, srv.JS, specs.All()...)
	require.NoError(t, err)
	env := append(os.Environ(), "NATS_URL="+srv.URL)

	sub := exec.Command(subBin)
	sub.Env = env
	var subOut syncBuffer
	sub.Stdout, sub.Stderr = &subOut, &subOut
	require.NoError(t, sub.Start())
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	t.Cleanup(func() { _ = sub.Process.Kill() })
	require.Eventually(t, func() bool { return strings.Contains(subOut.String(), "consuming auth.user.>") },
		30*time.Second, 20*time.Millisecond, "subscriber did not start: %s", subOut.String())

	pub := exec.Command(pubBin)
	pub.Env = env
	pubOut, err := pub.CombinedOutput()
	require.NoError(t, err, "publisher: %s", pubOut)
	require.Eventually(t, func() bool { return strings.Contains(subOut.String(), "user deleted") },
		30*time.Second, 20*time.Millisecond, "subscriber: %s", subOut.String())
	require.NoError(t, sub.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-subDone:
		require.NoError(t, err, subOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("subscriber did not stop on SIGTERM: %s", subOut.String())
	}

	for name, out := range map[string]string{"publisher": string(pubOut), "subscriber": subOut.String()} {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.NotEmpty(t, lines, name)
		connected := false
		for _, l := range lines {
			assert.Regexp(t, `^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`, l, "%s printed a line in another format", name)
			connected = connected || strings.Contains(l, `msg="nats connected"`)
		}
		assert.True(t, connected, "%s: the connection's own line is there, in the same format:\n%s", name, out)
	}
}
