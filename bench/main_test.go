package bench_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/jetevents/events/bench"
)

// env is the one embedded JetStream server of this test binary, shared by
// every test and benchmark (each trial gets its own stream).
var env *bench.Env

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jetevents-bench-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: temp dir:", err)
		os.Exit(1)
	}
	env, err = bench.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
