package eventstest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
)

// clusterWait bounds every wait of the cluster tests: elections on two
// cores with race-instrumented servers take seconds, not minutes.
const clusterWait = 60 * time.Second

func clusterCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	t.Cleanup(cancel)
	return ctx
}

// r3Stream creates an R3 file stream on subject "<name>.>" through nc.
func r3Stream(t *testing.T, js natsjs.JetStream, name string) {
	t.Helper()
	_, err := js.CreateStream(clusterCtx(t), natsjs.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Replicas: 3, Storage: natsjs.FileStorage,
	})
	require.NoError(t, err)
}

// publishN publishes n messages on subject, each retried until acked (an
// election may be running), with distinct message ids from prefix.
func publishN(t *testing.T, js natsjs.JetStream, subject, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := js.Publish(ctx, subject, []byte(id), natsjs.WithMsgID(id))
			return err == nil
		}, clusterWait, 10*time.Millisecond, "publish %s", id)
	}
}

// localStreamMsgs is the number of messages node's own replica of stream
// holds, from its /jsz (not the leader's view).
func localStreamMsgs(t *testing.T, c *eventstest.Cluster, node int, stream string) uint64 {
	t.Helper()
	resp, err := http.Get(c.MonitorURL(node) + "/jsz?accounts=true&streams=true")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var info server.JSInfo
	require.NoError(t, json.Unmarshal(body, &info))
	for _, acc := range info.AccountDetails {
		for _, s := range acc.Streams {
			if s.Name == stream {
				return s.State.Msgs
			}
		}
	}
	return 0
}

func streamMsgs(t *testing.T, js natsjs.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(clusterCtx(t), stream)
	require.NoError(t, err)
	info, err := s.Info(clusterCtx(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func newJS(t *testing.T, nc *nats.Conn) natsjs.JetStream {
	t.Helper()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	return js
}

func TestCluster_forms_with_one_meta_leader_and_distinct_nodes(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	require.Equal(t, 3, c.Nodes())

	leader, err := c.MetaLeader()
	require.NoError(t, err)
	assert.True(t, c.Running(leader))

	names, dirs, urls := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range c.Nodes() {
		names[c.Name(i)], dirs[c.StoreDir(i)], urls[c.URL(i)] = true, true, true
		assert.True(t, c.Running(i), "node %d", i)
	}
	assert.Len(t, names, 3, "server names")
	assert.Len(t, dirs, 3, "store dirs")
	assert.Len(t, urls, 3, "client URLs")
	assert.Equal(t, []string{c.URL(0), c.URL(1), c.URL(2)}, c.URLs())

	// Every node is a client entry point of the same cluster.
	for i := range c.Nodes() {
		nc, err := nats.Connect(c.URL(i))
		require.NoError(t, err)
		assert.Equal(t, "jetevents-test", nc.ConnectedClusterName(), "node %d", i)
		assert.Equal(t, c.Name(i), nc.ConnectedServerName(), "node %d", i)
		nc.Close()
	}
	_, err = c.StreamLeader("NOPE")
	assert.ErrorIs(t, err, eventstest.ErrNoLeader)
	assert.ErrorIs(t, c.Kill(3), eventstest.ErrNoNode)
	assert.ErrorIs(t, c.Restart(-1), eventstest.ErrNoNode)
}

func TestCluster_R3_stream_has_a_leader_and_two_current_replicas(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	js := newJS(t, c.Connect(t))
	r3Stream(t, js, "ORDERS")
	publishN(t, js, "ORDERS.created", "a", 10)

	leader, err := c.StreamLeader("ORDERS")
	require.NoError(t, err)
	s, err := js.Stream(clusterCtx(t), "ORDERS")
	require.NoError(t, err)
	info, err := s.Info(clusterCtx(t))
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	assert.Equal(t, c.Name(leader), info.Cluster.Leader)
	assert.Len(t, info.Cluster.Replicas, 2)
	// Every node holds all 10 in its own replica.
	for i := range c.Nodes() {
		require.Eventually(t, func() bool { return localStreamMsgs(t, c, i, "ORDERS") == 10 }, clusterWait, 20*time.Millisecond, "node %d", i)
	}
}

func TestCluster_killing_the_stream_leader_elects_another_and_publishes_go_on(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	nc := c.Connect(t)
	js := newJS(t, nc)
	r3Stream(t, js, "ORDERS")
	publishN(t, js, "ORDERS.created", "before", 20)

	old, err := c.StreamLeader("ORDERS")
	require.NoError(t, err)
	require.NoError(t, c.Kill(old))
	assert.False(t, c.Running(old))

	var leader int
	require.Eventually(t, func() bool {
		leader, err = c.StreamLeader("ORDERS")
		return err == nil
	}, clusterWait, 20*time.Millisecond, "a new stream leader")
	assert.NotEqual(t, old, leader)
	assert.True(t, c.Running(leader))

	publishN(t, js, "ORDERS.created", "after", 20)
	assert.Equal(t, uint64(40), streamMsgs(t, js, "ORDERS"))
}

func TestCluster_killing_the_consumer_leader_elects_another(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	js := newJS(t, c.Connect(t))
	r3Stream(t, js, "ORDERS")
	_, err := js.CreateOrUpdateConsumer(clusterCtx(t), "ORDERS", natsjs.ConsumerConfig{Durable: "billing", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)

	var old int
	require.Eventually(t, func() bool {
		old, err = c.ConsumerLeader("ORDERS", "billing")
		return err == nil
	}, clusterWait, 20*time.Millisecond)
	_, err = c.ConsumerLeader("ORDERS", "nobody")
	assert.ErrorIs(t, err, eventstest.ErrNoLeader)

	require.NoError(t, c.Kill(old))
	var leader int
	require.Eventually(t, func() bool {
		leader, err = c.ConsumerLeader("ORDERS", "billing")
		return err == nil
	}, clusterWait, 20*time.Millisecond, "a new consumer leader")
	assert.NotEqual(t, old, leader)
}

func TestCluster_restart_rejoins_with_the_same_store_and_catches_up(t *testing.T) {
	c := eventstest.NewCluster(t, 3)
	js := newJS(t, c.Connect(t))
	r3Stream(t, js, "ORDERS")
	publishN(t, js, "ORDERS.created", "a", 30)

	leader, err := c.StreamLeader("ORDERS")
	require.NoError(t, err)
	follower := (leader + 1) % c.Nodes()
	require.Eventually(t, func() bool { return localStreamMsgs(t, c, follower, "ORDERS") == 30 }, clusterWait, 20*time.Millisecond)
	url := c.URL(follower)
	require.NoError(t, c.Kill(follower))
	publishN(t, js, "ORDERS.created", "b", 30) // the follower misses these

	require.NoError(t, c.Restart(follower))
	assert.True(t, c.Running(follower))
	assert.Equal(t, url, c.URL(follower), "same port")
	require.Eventually(t, func() bool { return localStreamMsgs(t, c, follower, "ORDERS") == 60 }, clusterWait, 20*time.Millisecond, "caught up")

	// Every node SIGKILLed at once: only the store directories can bring
	// the 60 messages back.
	for i := range c.Nodes() {
		require.NoError(t, c.Kill(i))
	}
	errs := make(chan error, c.Nodes())
	for i := range c.Nodes() {
		go func() { errs <- c.Restart(i) }() // a lone node cannot be ready: restart them together
	}
	for range c.Nodes() {
		require.NoError(t, <-errs) // each Restart is bounded by ReadyTimeout
	}
	require.Eventually(t, func() bool {
		_, err := c.StreamLeader("ORDERS")
		return err == nil
	}, clusterWait, 20*time.Millisecond, "stream back after a full restart")
	assert.Equal(t, uint64(60), streamMsgs(t, js, "ORDERS"))
	for i := range c.Nodes() {
		require.Eventually(t, func() bool { return localStreamMsgs(t, c, i, "ORDERS") == 60 }, clusterWait, 20*time.Millisecond, "node %d", i)
	}
}

func TestCluster_in_process_fails_over_too(t *testing.T) {
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{InProcess: true, SyncAlways: true})
	js := newJS(t, c.Connect(t))
	r3Stream(t, js, "ORDERS")
	publishN(t, js, "ORDERS.created", "a", 5)
	old, err := c.StreamLeader("ORDERS")
	require.NoError(t, err)
	require.NoError(t, c.Kill(old))
	var leader int
	require.Eventually(t, func() bool {
		leader, err = c.StreamLeader("ORDERS")
		return err == nil
	}, clusterWait, 20*time.Millisecond)
	assert.NotEqual(t, old, leader)
	publishN(t, js, "ORDERS.created", "b", 5)
	require.NoError(t, c.Restart(old))
	require.Eventually(t, func() bool { return localStreamMsgs(t, c, old, "ORDERS") == 10 }, clusterWait, 20*time.Millisecond)
}

func TestCluster_of_one_is_a_server_process_that_survives_SIGKILL_with_its_data(t *testing.T) {
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1, SyncAlways: true})
	js := newJS(t, c.Connect(t))
	_, err := js.CreateStream(clusterCtx(t), natsjs.StreamConfig{Name: "ORDERS", Subjects: []string{"ORDERS.>"}})
	require.NoError(t, err)
	publishN(t, js, "ORDERS.created", "a", 20)
	leader, err := c.StreamLeader("ORDERS")
	require.NoError(t, err)
	assert.Equal(t, 0, leader)
	meta, err := c.MetaLeader()
	require.NoError(t, err)
	assert.Equal(t, 0, meta)

	for round := range 3 {
		require.NoError(t, c.Kill(0))
		assert.False(t, c.Running(0))
		_, err := c.StreamLeader("ORDERS")
		assert.ErrorIs(t, err, eventstest.ErrNoLeader, "round %d: nothing runs", round)
		require.NoError(t, c.Restart(0))
		publishN(t, js, "ORDERS.created", fmt.Sprintf("r%d", round), 10)
	}
	assert.Equal(t, uint64(50), streamMsgs(t, js, "ORDERS"), "the store came back every time")
}

func TestClusterConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		cfg  eventstest.ClusterConfig
		ok   bool
	}{
		{"three nodes", eventstest.ClusterConfig{Nodes: 3, ReadyTimeout: time.Second}, true},
		{"defaults", eventstest.ClusterConfig{}, true},
		{"five nodes", eventstest.ClusterConfig{Nodes: 5}, true},
		{"one node: a single server", eventstest.ClusterConfig{Nodes: 1}, true},
		{"two nodes", eventstest.ClusterConfig{Nodes: 2}, false},
		{"negative nodes", eventstest.ClusterConfig{Nodes: -1}, false},
		{"negative timeout", eventstest.ClusterConfig{Nodes: 3, ReadyTimeout: -1}, false},
		{"name with a dot", eventstest.ClusterConfig{Nodes: 3, Name: "a.b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		})
	}
}
