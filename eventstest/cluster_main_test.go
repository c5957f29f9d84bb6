package eventstest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain is the hook every package using NewCluster needs, plus the
// stand-in test process of TestCluster_node_processes_die_with_the_test_process.
func TestMain(m *testing.M) {
	RunServerIfChild()
	if spec, ok := os.LookupEnv(envOrphanParent); ok {
		os.Exit(runOrphanParent(spec))
	}
	os.Exit(m.Run())
}

// envOrphanParent makes the test binary a stand-in test process: it starts
// one node process, prints its pid and waits to be SIGKILLed.
const envOrphanParent = "JETEVENTS_EVENTSTEST_ORPHAN_PARENT"

func runOrphanParent(specJSON string) int {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &processRunner{spec: spec, spawn: newSpawner()}
	if err := r.start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("node pid %d\n", r.pid())
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	<-done // normally never: the test SIGKILLs this process first
	fmt.Fprintln(os.Stderr, "node exited:", r.output())
	return 1
}
