package embedded_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
)

// freePorts returns n distinct free ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func TestStart_three_members_form_a_cluster_and_keep_their_ports_across_Restart(t *testing.T) {
	ports := freePorts(t, 3)
	routes := make([]string, 3)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	srvs := make([]*embedded.Server, 3)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			// A member is ready only once a quorum runs: start them together.
			srv, err := embedded.Start(embedded.Config{
				StoreDir: t.TempDir(), ServerName: fmt.Sprintf("m%d", i), ClusterName: "c1",
				ClusterPort: ports[i], Routes: routes, MonitorPort: -1, SyncAlways: true, ReadyTimeout: 30 * time.Second,
			})
			srvs[i] = srv
			errs <- err
		}()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
	for _, s := range srvs {
		t.Cleanup(s.Shutdown)
	}
	srv := srvs[0]
	assert.Equal(t, routes[0], srv.ClusterURL())
	mon := srv.MonitorURL()
	require.True(t, strings.HasPrefix(mon, "http://127.0.0.1:"), mon)
	require.True(t, srv.NATS().JetStreamIsClustered())
	require.NotNil(t, srv.NATS().JetStreamConfig())
	assert.True(t, srv.NATS().JetStreamConfig().SyncAlways, "sync_interval: always")

	resp, err := http.Get(mon + "/varz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return srv.NATS().NumRoutes() >= 2 }, 30*time.Second, 10*time.Millisecond, "routed to both others")

	require.NoError(t, srv.Restart())
	assert.Equal(t, routes[0], srv.ClusterURL())
	assert.Equal(t, mon, srv.MonitorURL())
	require.Eventually(t, func() bool { return srv.NATS().NumRoutes() >= 2 }, 30*time.Second, 10*time.Millisecond, "routed again after Restart")
}

func TestStart_standalone_has_no_cluster_or_monitor_URL(t *testing.T) {
	srv, err := embedded.Start(embedded.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	assert.Empty(t, srv.ClusterURL())
	assert.Empty(t, srv.MonitorURL())
	assert.Nil(t, srv.NATS().ClusterAddr())
}

func TestStart_refuses_a_route_that_is_not_a_URL(t *testing.T) {
	_, err := embedded.Start(embedded.Config{ClusterName: "c1", Routes: []string{"127.0.0.1:6222"}})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}
