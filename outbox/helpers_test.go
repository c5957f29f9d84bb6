package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jetevents/events/middleware"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/outbox"
)

// wait bounds every wait of these tests.
const wait = 30 * time.Second

// testDB is one of the databases every behaviour is tested on.
type testDB struct {
	name string
	db   *sql.DB
	dsn  string
}

// databases returns a fresh PostgreSQL database (a throwaway cluster, or
// $PG_URL) and a fresh SQLite file, both closed when the test ends.
func databases(t *testing.T) []testDB {
	t.Helper()
	return []testDB{postgresDB(t, eventstest.NewPostgres(t).DSN), sqliteDB(t)}
}

func postgresDB(t *testing.T, dsn string) testDB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return testDB{name: "postgres", db: db, dsn: dsn}
}

// sqliteDSN is the DSN the README recommends: a busy timeout (writers wait
// for each other instead of failing), WAL (readers do not block the
// writer), and BEGIN IMMEDIATE (a transaction takes the write lock when it
// starts, so that one that read first cannot fail to upgrade).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
}

func sqliteDB(t *testing.T) testDB {
	t.Helper()
	dsn := sqliteDSN(filepath.Join(t.TempDir(), "service.db"))
	db, err := sql.Open("sqlite", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return testDB{name: "sqlite", db: db, dsn: dsn}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	return ctx
}

// newOutbox returns the outbox of db with its schema created.
func newOutbox(t *testing.T, db *sql.DB, cfg outbox.Config) *outbox.Outbox {
	t.Helper()
	o, err := outbox.New(db, cfg)
	require.NoError(t, err)
	require.NoError(t, o.CreateSchema(ctxT(t)))
	return o
}

// stream creates a stream storing subjects with a duplicates window.
func stream(t *testing.T, js natsjs.JetStream, name string, subjects ...string) {
	t.Helper()
	_, err := js.CreateStream(ctxT(t), natsjs.StreamConfig{Name: name, Subjects: subjects, Duplicates: 2 * time.Minute})
	require.NoError(t, err)
}

// stored returns the messages of stream, in stream order.
func stored(t *testing.T, js natsjs.JetStream, name string) []*natsjs.RawStreamMsg {
	t.Helper()
	ctx := ctxT(t)
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*natsjs.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// storedIDs returns the event ids of stream's messages by subject, in order.
func storedIDs(t *testing.T, js natsjs.JetStream, name string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range stored(t, js, name) {
		out[m.Subject] = append(out[m.Subject], m.Header.Get("Nats-Msg-Id"))
	}
	return out
}

func count(t *testing.T, js natsjs.JetStream, name string) int {
	t.Helper()
	ctx := ctxT(t)
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return int(info.State.Msgs)
}

func publisher(t *testing.T, srv *eventstest.Server) *jetstream.Publisher {
	t.Helper()
	pub, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

var t0 = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)

func event(id string) *envelope.Event {
	e := envelope.NewEvent("resource.created", "my-service", "org-1", t0, map[string]interface{}{"resource_id": id})
	e.ID = id
	return e
}

// publishTx publishes e on subject in a transaction of its own and commits.
func publishTx(t *testing.T, o *outbox.Outbox, db *sql.DB, subject string, e *envelope.Event) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, o.Publish(ctx, tx, subject, e))
	require.NoError(t, tx.Commit())
}

// runRelay runs r until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(wait):
				t.Errorf("relay %s: Run did not return %s after its context ended", r.Name(), wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newRelay(t *testing.T, o *outbox.Outbox, pub outbox.Publisher, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	r, err := outbox.NewRelay(o, pub, cfg)
	require.NoError(t, err)
	return r
}

// pending is the outbox's number of rows.
func pending(t *testing.T, o *outbox.Outbox) int64 {
	t.Helper()
	_, n, _, err := o.Backlog(ctxT(t))
	require.NoError(t, err)
	return n
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// testLogger prints the relay's logs when OUTBOX_LOGS is set.
func testLogger() watermill.LoggerAdapter {
	if os.Getenv("OUTBOX_LOGS") == "" {
		return watermill.NopLogger{}
	}
	return middleware.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
}
