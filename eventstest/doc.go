// Package eventstest is the test kit of jetevents: an embedded JetStream
// server per test (NewServer), a 3-node JetStream cluster per test
// (NewCluster), both cleaned up when the test ends, and a fake clock. It
// imports nats-server, so only tests, examples and the embedded default
// import it.
//
// # Testing against a cluster
//
// NewCluster(t, 3) starts three nats-server processes on 127.0.0.1, each
// with its own name (node-0..node-2), store directory and random client,
// route and monitoring ports, routed to one another, and returns once every
// node agrees on a JetStream meta leader. The servers are the test binary
// itself, re-executed: so that Kill is a real SIGKILL (no flush, no goodbye
// to the peers, what a crash does), which an in-process server cannot give.
// This needs one line at the top of TestMain, which turns the re-executed
// binary into a server before any test runs:
//
//	func TestMain(m *testing.M) {
//		eventstest.RunServerIfChild()
//		os.Exit(m.Run())
//	}
//
// Without it NewCluster fails with ErrNoChildHook. Set
// ClusterConfig.InProcess to run the servers in the test process instead
// (Kill is then a graceful Shutdown: leader failover is exercised, crash
// recovery is not).
//
// A test then connects (Connect, or URLs for its own client), creates R3
// streams, and kills and restarts nodes while it works:
//
//	c := eventstest.NewCluster(t, 3)
//	nc := c.Connect(t) // every node's URL, reconnects forever
//	js, _ := natsjs.New(nc) // natsjs "github.com/nats-io/nats.go/jetstream"
//	_, _ = js.CreateStream(ctx, natsjs.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
//	leader, _ := c.StreamLeader("ORDERS")
//	_ = c.Kill(leader)       // SIGKILL; returns once the process is gone
//	// ... wait (with a deadline) for c.StreamLeader to name another node
//	_ = c.Restart(leader)    // same store and ports; returns once it rejoined
//
// StreamLeader, ConsumerLeader and MetaLeader only name a running node that
// calls itself the leader; during an election they return ErrNoLeader, so
// wait on them with require.Eventually. ClusterConfig.SyncAlways makes the
// servers fsync every write before acking it (`sync_interval: always`).
// ClusterConfig{Nodes: 1} is a single standalone server process, for tests
// that SIGKILL and restart "the" server.
//
// Nothing outlives the test: cleanup SIGKILLs every node whether the test
// passed or not, and a node process also dies with the test process
// (Pdeathsig on Linux, and everywhere when its stdin pipe from the test
// closes). When the test fails, each node's output is printed.
package eventstest
