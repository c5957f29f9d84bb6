package metrics_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/metrics"
	"github.com/jetevents/events/outbox"
)

// TestMetrics_outbox_backlog_and_relayed_rows: the backlog gauges read the
// table at scrape (3 pending, then 0), and every relayed row is counted by
// result with its lag observed; a relay with no stream for a subject counts
// its failures as no_stream.
func TestMetrics_outbox_backlog_and_relayed_rows(t *testing.T) {
	srv := newServer(t)
	ctx := ctxT(t)
	_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "RES", Subjects: []string{"res.>"}})
	require.NoError(t, err)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "s.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	require.NoError(t, err)
	defer db.Close()
	ob, err := outbox.New(db, outbox.Config{})
	require.NoError(t, err)
	require.NoError(t, ob.CreateSchema(ctx))

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{})
	require.NoError(t, err)
	m.WatchOutbox(ob.Backlog)
	for i, subject := range []string{"res.a", "res.a", "res.b", "nostream.c"} {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		e := envelope.NewEvent("resource.created", "svc", "org", time.Now(), map[string]interface{}{"n": i})
		require.NoError(t, ob.Publish(ctx, tx, subject, e))
		require.NoError(t, tx.Commit())
	}
	assert.Equal(t, series{"table=jetevents_outbox": 4}, gather(t, reg, "jetevents_outbox_pending"))
	assert.Positive(t, gather(t, reg, "jetevents_outbox_oldest_age_seconds")["table=jetevents_outbox"])

	pub, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	defer pub.Close()
	relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{OnRelayed: m.OutboxRelayed, PollMax: 10 * time.Millisecond, Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	require.Eventually(t, func() bool {
		return gather(t, reg, "jetevents_outbox_pending")["table=jetevents_outbox"] == 1 &&
			gather(t, reg, "jetevents_outbox_relayed_total")["result=no_stream,subject=nostream.c,table=jetevents_outbox"] >= 1
	}, 30*time.Second, 5*time.Millisecond)
	relayed := gather(t, reg, "jetevents_outbox_relayed_total")
	assert.Equal(t, 2.0, relayed["result=ok,subject=res.a,table=jetevents_outbox"])
	assert.Equal(t, 1.0, relayed["result=ok,subject=res.b,table=jetevents_outbox"])
	assert.Equal(t, series{"table=jetevents_outbox": 3}, gather(t, reg, "jetevents_outbox_relay_lag_seconds"), "one lag per stored row")
}
