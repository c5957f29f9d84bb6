package eventstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
)

// Cluster defaults.
const (
	// defaultClusterNodes is the size of a cluster when ClusterConfig.Nodes is 0.
	defaultClusterNodes = 3
	// defaultClusterName is the nats-server cluster name.
	defaultClusterName = "jetevents-test"
	// defaultClusterReadyTimeout bounds NewCluster's and Restart's waits. It
	// is generous because three race-instrumented servers on two cores take
	// seconds to elect a meta leader.
	defaultClusterReadyTimeout = 60 * time.Second
)

// ClusterConfig configures NewClusterWithConfig. The zero value is a 3-node
// cluster of server processes with nats-server's default (lazy) fsync.
type ClusterConfig struct {
	// Nodes is the number of servers: 3 or more for a cluster, or 1 for a
	// single standalone server (no cluster, no RAFT) that can be SIGKILLed
	// and restarted like a node; 2 is refused (it survives no loss).
	// Default defaultClusterNodes (3, the smallest cluster that survives
	// the loss of one node).
	Nodes int
	// Name is the nats-server cluster name. Default defaultClusterName.
	Name string
	// InProcess runs the servers inside the test process instead of as
	// child processes. Kill is then a Shutdown: graceful, the store is
	// flushed and closed, so it proves leader failover but not crash
	// recovery. Default false: child processes, so that Kill is a real
	// SIGKILL; this needs RunServerIfChild at the top of TestMain.
	InProcess bool
	// SyncAlways makes every server fsync each write before acking it
	// (`sync_interval: always`). Default false: nats-server's lazy fsync.
	SyncAlways bool
	// Logs turns the servers' own logs on: a child's go to its output,
	// printed with t.Log when the test fails; an in-process server's go to
	// stderr. Default off (a child's output, errors included, is still kept
	// and printed on failure).
	Logs bool
	// ReadyTimeout bounds NewCluster's wait for a meta leader and Restart's
	// wait for the node to rejoin. Default defaultClusterReadyTimeout.
	ReadyTimeout time.Duration
}

func (c *ClusterConfig) setDefaults() {
	if c.Nodes == 0 {
		c.Nodes = defaultClusterNodes
	}
	if c.Name == "" {
		c.Name = defaultClusterName
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = defaultClusterReadyTimeout
	}
}

// Validate reports a configuration NewClusterWithConfig cannot run (errors
// match envelope.ErrInvalidConfig). Zero fields are valid: they mean the defaults.
func (c ClusterConfig) Validate() error {
	if c.Nodes < 0 || c.Nodes == 2 {
		return fmt.Errorf("%w: %d nodes (1 for a single server process, 3 or more for a cluster that survives the loss of one)", envelope.ErrInvalidConfig, c.Nodes)
	}
	if c.ReadyTimeout < 0 {
		return fmt.Errorf("%w: negative ready timeout %s", envelope.ErrInvalidConfig, c.ReadyTimeout)
	}
	if strings.ContainsAny(c.Name, " \t.*>") {
		return fmt.Errorf("%w: cluster name %q", envelope.ErrInvalidConfig, c.Name)
	}
	return nil
}

// Cluster is a JetStream cluster on 127.0.0.1 started for one test: Nodes
// servers, each with its own name (node-0, node-1, ...), store directory and
// random client, route and monitoring ports, all routed to one another. It
// is ready when every node agrees on a meta leader and reports itself
// healthy. With Nodes 1 it is a single standalone server process, ready
// when healthy: the way to SIGKILL and restart "the" server of a test.
// Nodes are numbered from 0. Its methods are safe for concurrent
// use; Kill and Restart run one at a time.
//
// Everything it started is killed when the test ends, whether it passed or
// not; a server process also dies with the test process (Pdeathsig on
// Linux, and on every OS when its stdin pipe from the test closes).
type Cluster struct {
	t     testing.TB
	cfg   ClusterConfig
	nodes []*clusterNode
	spawn *spawner // nil in process
	http  *http.Client

	opMu sync.Mutex // serialises Kill and Restart
}

// clusterNode is one server: its fixed identity (kept across restarts) and
// the runner that owns the running server.
type clusterNode struct {
	spec   nodeSpec
	runner nodeRunner
}

// nodeRunner runs one server, as a child process or in process.
type nodeRunner interface {
	// start starts the server and returns once it listens (or failed).
	start(ctx context.Context) error
	// kill stops the server abruptly and returns once it is gone. Killing a
	// stopped server does nothing.
	kill() error
	// running reports whether the server is up (a process that exited by
	// itself is not).
	running() bool
	// exited reports whether the server ended without being killed (a
	// crashed or misconfigured child process).
	exited() bool
	// output is the tail of what the server wrote, for failure messages.
	output() string
	// pid is the server's process id, 0 in process.
	pid() int
}

// NewCluster starts a JetStream cluster of nodes server processes (see
// ClusterConfig for the defaults) and waits until it has a meta leader. It
// fails the test if the cluster is not ready within
// defaultClusterReadyTimeout. The test binary must call RunServerIfChild
// first thing in TestMain.
func NewCluster(t testing.TB, nodes int) *Cluster {
	t.Helper()
	return NewClusterWithConfig(t, ClusterConfig{Nodes: nodes})
}

// NewClusterWithConfig is NewCluster with a full configuration.
func NewClusterWithConfig(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("eventstest: cluster: %v", err)
	}
	ports, err := freePorts(3 * cfg.Nodes)
	if err != nil {
		t.Fatalf("eventstest: cluster ports: %v", err)
	}
	c := &Cluster{
		t:   t,
		cfg: cfg,
		// No keep-alive: an idle connection to a killed server is useless.
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	routes := make([]string, cfg.Nodes)
	for i := range routes {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1])
	}
	for i := 0; i < cfg.Nodes; i++ {
		spec := nodeSpec{
			Name:        fmt.Sprintf("node-%d", i),
			Cluster:     cfg.Name,
			Port:        ports[3*i],
			ClusterPort: ports[3*i+1],
			MonitorPort: ports[3*i+2],
			StoreDir:    t.TempDir(),
			SyncAlways:  cfg.SyncAlways,
			Logs:        cfg.Logs,
		}
		for j, r := range routes {
			if j != i {
				spec.Routes = append(spec.Routes, r)
			}
		}
		if cfg.Nodes == 1 {
			spec.Cluster = "" // standalone: a lone cluster member would wait for peers forever
		}
		c.nodes = append(c.nodes, &clusterNode{spec: spec})
	}
	if !cfg.InProcess {
		c.spawn = newSpawner()
	}
	for _, n := range c.nodes {
		if cfg.InProcess {
			n.runner = &inProcessRunner{spec: n.spec}
		} else {
			n.runner = &processRunner{spec: n.spec, spawn: c.spawn}
		}
	}
	// Registered after the TempDirs, so it runs before they are removed.
	t.Cleanup(c.close)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.ReadyTimeout)
	defer cancel()
	for i, n := range c.nodes {
		if err := n.runner.start(ctx); err != nil {
			t.Fatalf("eventstest: cluster: start node %d: %v", i, err)
		}
	}
	if err := c.waitReady(ctx, -1); err != nil {
		t.Fatalf("eventstest: cluster: %v", err)
	}
	return c
}

// close kills every node (a crash, not a shutdown: nothing needs to
// survive the test) and prints their output if the test failed.
func (c *Cluster) close() {
	for i, n := range c.nodes {
		if n.runner == nil {
			continue
		}
		if err := n.runner.kill(); err != nil {
			c.t.Errorf("eventstest: cluster: kill node %d at cleanup: %v", i, err)
		}
		if c.t.Failed() {
			if out := n.runner.output(); out != "" {
				c.t.Logf("eventstest: cluster node %d (%s) output:\n%s", i, n.spec.Name, out)
			}
		}
	}
	if c.spawn != nil {
		c.spawn.close()
	}
	c.http.CloseIdleConnections()
}

// Nodes is the number of nodes.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// standalone: a single server, not clustered.
func (c *Cluster) standalone() bool { return len(c.nodes) == 1 }

func (c *Cluster) node(i int) (*clusterNode, error) {
	if i < 0 || i >= len(c.nodes) {
		return nil, fmt.Errorf("%w: %d (the cluster has nodes 0..%d)", ErrNoNode, i, len(c.nodes)-1)
	}
	return c.nodes[i], nil
}

// Name is node's server name (node-0, node-1, ...), as the server reports it
// in stream and consumer cluster info. It panics on a bad index.
func (c *Cluster) Name(node int) string { return c.mustNode(node).spec.Name }

// URL is node's client URL (nats://127.0.0.1:PORT), the same across
// restarts. It panics on a bad index.
func (c *Cluster) URL(node int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.mustNode(node).spec.Port)
}

// URLs are the client URLs of every node, in node order, running or not.
// strings.Join(c.URLs(), ",") is a server list for nats.Connect.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i := range c.nodes {
		out[i] = c.URL(i)
	}
	return out
}

// MonitorURL is the base URL of node's HTTP monitoring (/healthz, /jsz,
// /varz). It panics on a bad index.
func (c *Cluster) MonitorURL(node int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.mustNode(node).spec.MonitorPort)
}

// StoreDir is node's JetStream store directory, kept across Kill and
// Restart and removed when the test ends. It panics on a bad index.
func (c *Cluster) StoreDir(node int) string { return c.mustNode(node).spec.StoreDir }

// Running reports whether node's server is up: started and neither killed
// nor exited by itself. It panics on a bad index.
func (c *Cluster) Running(node int) bool { return c.mustNode(node).runner.running() }

func (c *Cluster) mustNode(i int) *clusterNode {
	n, err := c.node(i)
	if err != nil {
		panic(err)
	}
	return n
}

// Kill stops node abruptly: SIGKILL for a server process (no flush, no
// goodbye to its peers: what a crash or an OOM kill does), Shutdown in
// process. It returns once the server is gone. Killing a stopped node does
// nothing. The node keeps its store directory and ports for Restart.
func (c *Cluster) Kill(node int) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if err := n.runner.kill(); err != nil {
		return fmt.Errorf("eventstest: kill node %d: %w", node, err)
	}
	return nil
}

// Restart starts node again with its store directory and ports (killing it
// first if it runs) and waits, up to ReadyTimeout, until it has rejoined:
// it agrees with the running nodes on the meta leader and reports itself
// healthy, which nats-server does once the streams and consumers it holds
// have caught up. Errors match ErrNotReady. To bring back a cluster whose
// nodes are all stopped, call Restart for each from its own goroutine: no
// node can be ready before a quorum runs.
func (c *Cluster) Restart(node int) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReadyTimeout)
	defer cancel()
	c.opMu.Lock()
	err = n.runner.kill()
	if err == nil {
		err = n.runner.start(ctx)
	}
	c.opMu.Unlock()
	if err != nil {
		return fmt.Errorf("eventstest: restart node %d: %w", node, err)
	}
	// Outside opMu: nodes restarted from concurrent calls become ready
	// together (a lone node of a fully stopped cluster never does).
	if err := c.waitReady(ctx, node); err != nil {
		return fmt.Errorf("eventstest: restart node %d: %w", node, err)
	}
	return nil
}

// Connect opens a client connection to every node's URL, closed when t
// ends. Like Server.Connect it reconnects forever (every 20ms), so it rides
// through Kill and Restart; opts are applied last.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
	}
	url := strings.Join(c.URLs(), ",")
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("eventstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// MetaLeader is the node that leads the JetStream meta group now, or an
// error matching ErrNoLeader. A single server (Nodes 1) leads everything
// while it runs.
func (c *Cluster) MetaLeader() (int, error) {
	if c.standalone() && c.nodes[0].runner.running() {
		return 0, nil
	}
	for i, n := range c.nodes {
		if !n.runner.running() {
			continue
		}
		jsz, err := c.jsz(i, "")
		if err != nil {
			continue
		}
		if jsz.Meta != nil && jsz.Meta.Leader == n.spec.Name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: meta group: no running node is its leader", ErrNoLeader)
}

// StreamLeader is the node that leads stream now (the one its publishes
// and cluster info go through), or an error matching ErrNoLeader while an
// election runs, when the stream lost its quorum, or when it does not
// exist. Only a running node that calls itself the leader counts, so a
// killed leader is never reported.
func (c *Cluster) StreamLeader(stream string) (int, error) {
	for i, n := range c.nodes {
		if !n.runner.running() {
			continue
		}
		jsz, err := c.jsz(i, "accounts=true&streams=true")
		if err != nil {
			continue
		}
		for _, acc := range jsz.AccountDetails {
			for _, s := range acc.Streams {
				if s.Name == stream && (c.standalone() || s.Cluster != nil && s.Cluster.Leader == n.spec.Name) {
					return i, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("%w: stream %s: no running node is its leader", ErrNoLeader, stream)
}

// ConsumerLeader is the node that leads the durable consumer of stream now
// (the one that delivers its messages and tracks its acks), or an error
// matching ErrNoLeader, as StreamLeader.
func (c *Cluster) ConsumerLeader(stream, durable string) (int, error) {
	for i, n := range c.nodes {
		if !n.runner.running() {
			continue
		}
		jsz, err := c.jsz(i, "accounts=true&streams=true&consumers=true")
		if err != nil {
			continue
		}
		for _, acc := range jsz.AccountDetails {
			for _, s := range acc.Streams {
				if s.Name != stream {
					continue
				}
				for _, ci := range s.Consumer {
					if ci != nil && ci.Name == durable && (c.standalone() || ci.Cluster != nil && ci.Cluster.Leader == n.spec.Name) {
						return i, nil
					}
				}
			}
		}
	}
	return -1, fmt.Errorf("%w: consumer %s of stream %s: no running node is its leader", ErrNoLeader, durable, stream)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. All listeners
// are held until every port is chosen, so none repeats; another process can
// still take one before the server binds it, in which case the node fails
// to start with a clear error.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// nodeSpec is a node's fixed configuration, handed to a child process as
// JSON in its environment.
type nodeSpec struct {
	Name        string
	Cluster     string
	Port        int
	ClusterPort int
	MonitorPort int
	Routes      []string
	StoreDir    string
	SyncAlways  bool
	Logs        bool
}

func (s nodeSpec) config() embedded.Config {
	return embedded.Config{
		Host:         "127.0.0.1",
		Port:         s.Port,
		StoreDir:     s.StoreDir,
		ServerName:   s.Name,
		ReadyTimeout: 30 * time.Second,
		Logs:         s.Logs,
		ClusterName:  s.Cluster,
		ClusterPort:  s.ClusterPort,
		Routes:       s.Routes,
		MonitorPort:  s.MonitorPort,
		SyncAlways:   s.SyncAlways,
	}
}
