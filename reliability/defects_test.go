//go:build reliability

package reliability_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Defects found by the suite in code it does not own, each a failing test
// until the owner fixes it. `make reliability-short` (CI) leaves them out
// (-skip '^TestDefect_'); `make reliability` and `make reliability-defects`
// run them.

// resumeSlack is what the measurement itself may add to a resume time: the
// leaders are polled over HTTP (three nodes, every 20ms) and the handler
// calls are timestamped in the test.
const resumeSlack = 250 * time.Millisecond

// TestDefect_router_resumes_within_two_heartbeats_of_a_new_consumer_leader:
// #9 asks that the router resume within 2 heartbeats of the new leader. It
// does not after a consumer-leader SIGKILL: the pull goes silent, the
// router notices after 2 heartbeats and checks the durable
// (jetstream/pull.go recoverPull -> check, line ~411), and that consumer
// info request, sent while the consumer has no leader, is never answered:
// it waits the whole TransportConfig.APITimeout (DefaultAPITimeout 10s,
// pull.go:412), which router.New does not set (router/router.go:81-85), before it
// is retried. Measured: 3.7-7.2s after the new leaders are elected, instead
// of <= 1s (Heartbeat 500ms). Logged with RELIABILITY_LOGS=debug: "Consumer
// stalled" at T, "Durable not reachable yet, retrying: context deadline
// exceeded" at T+10s, "Consumer recovered ... after=10.25s". The same run
// on router.NewWithTransport with TransportConfig.APITimeout = Heartbeat
// resumed 65-684ms after the new leaders: bounding the recovery's API calls
// by the heartbeat is enough.
func TestDefect_router_resumes_within_two_heartbeats_of_a_new_consumer_leader(t *testing.T) {
	const name = "R3: consumer leader SIGKILLed x2 (2-heartbeat resume)"
	r, kills := failover(t, name, []string{leaderConsumer, leaderConsumer})
	record(t, r)
	assert.Zero(t, r.Lost, "acked events lost")
	for i, kl := range kills {
		assert.LessOrEqual(t, kl.resumed.Sub(kl.ready), 2*failoverHeartbeat+resumeSlack,
			"kill %d (node %d): from the new leaders to the next handled event", i+1, kl.node)
	}
}
