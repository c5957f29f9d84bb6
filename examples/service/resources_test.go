package service_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver

	events "github.com/jetevents/events"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/examples/service"
	"github.com/jetevents/events/outbox"
)

// TestTxService_resource_and_its_event_commit_together: on SQLite and on
// PostgreSQL, a created resource's row and its event commit together (the
// relay stores the event); a resource created in a transaction that rolls
// back leaves neither; and the consumer side (the Notifier on the router)
// handles the committed event only.
func TestTxService_resource_and_its_event_commit_together(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range []string{"MY_SERVICE", "DLQ"} {
		_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: name, Subjects: []string{map[string]string{"MY_SERVICE": "my-service.>", "DLQ": "dlq.>"}[name]}})
		require.NoError(t, err)
	}
	pg, err := sql.Open("pgx", eventstest.NewPostgres(t).DSN)
	require.NoError(t, err)
	defer pg.Close()
	lite, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "service.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	require.NoError(t, err)
	defer lite.Close()

	pub, err := events.NewPublisher(srv.Conn)
	require.NoError(t, err)
	defer pub.Close()
	mailer := &mailerFake{}
	r, err := events.NewRouter(srv.Conn, routerConfig())
	require.NoError(t, err)
	service.NewNotifier(mailer, pub, testClock).Register(r)
	rctx, stopRouter := context.WithCancel(ctx)
	routerDone := make(chan error, 1)
	go func() { routerDone <- r.Run(rctx) }()
	defer func() { stopRouter(); require.NoError(t, <-routerDone) }()

	for i, db := range []*sql.DB{lite, pg} {
		org := []string{"org-lite", "org-pg"}[i]
		_, err := db.ExecContext(ctx, service.ResourcesSchema)
		require.NoError(t, err)
		ob, err := outbox.New(db, outbox.Config{})
		require.NoError(t, err)
		require.NoError(t, ob.CreateSchema(ctx))
		relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{PollMax: 20 * time.Millisecond, Logger: watermill.NopLogger{}})
		require.NoError(t, err)
		relayCtx, stopRelay := context.WithCancel(ctx)
		relayDone := make(chan error, 1)
		go func() { relayDone <- relay.Run(relayCtx) }()

		svc := service.NewTxService(db, ob, testClock)
		require.NoError(t, svc.CreateResource(ctx, &service.ResourceData{OrganizationID: org, Type: "bucket"}))
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, svc.CreateResourceIn(ctx, tx, &service.ResourceData{OrganizationID: org + "-rolled-back", Type: "bucket"}))
		require.NoError(t, tx.Rollback())

		require.Eventually(t, func() bool { _, n, _, err := ob.Backlog(ctx); return err == nil && n == 0 }, 30*time.Second, 5*time.Millisecond)
		stopRelay()
		require.NoError(t, <-relayDone)
		var ids []string
		rows, err := db.QueryContext(ctx, "SELECT id FROM resources")
		require.NoError(t, err)
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Close())
		assert.Equal(t, []string{"res-" + org}, ids)
	}
	require.Eventually(t, func() bool { _, sent := mailer.snapshot(); return len(sent) == 2 }, 30*time.Second, 5*time.Millisecond)
	_, sent := mailer.snapshot()
	assert.ElementsMatch(t, []string{"admins@org-lite.example: New bucket res-org-lite", "admins@org-pg.example: New bucket res-org-pg"}, sent,
		"the committed resources are announced; the rolled-back ones never")
	s, err := srv.JS.Stream(ctx, "MY_SERVICE")
	require.NoError(t, err)
	info, err := s.Info(ctx, natsjs.WithSubjectFilter("my-service.resource.created"))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"my-service.resource.created": 2}, info.State.Subjects)
}
