package inbox_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/inbox"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

const wait = 30 * time.Second

type testDB struct {
	name string
	db   *sql.DB
}

// databases returns a fresh PostgreSQL database and a fresh SQLite file.
func databases(t *testing.T) []testDB {
	t.Helper()
	pg, err := sql.Open("pgx", eventstest.NewPostgres(t).DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	return []testDB{{"postgres", pg}, sqliteDB(t)}
}

func sqliteDB(t *testing.T) testDB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "service.db")+
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return testDB{"sqlite", db}
}

// q adapts $n placeholders to SQLite's ?.
func (d testDB) q(query string) string {
	if d.name != "sqlite" {
		return query
	}
	out := []byte{}
	for i := 0; i < len(query); i++ {
		if query[i] == '$' {
			out = append(out, '?')
			for i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
				i++
			}
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	return ctx
}

func newInbox(t *testing.T, d testDB) *inbox.Inbox {
	t.Helper()
	in, err := inbox.New(d.db, inbox.Config{})
	require.NoError(t, err)
	require.NoError(t, in.CreateSchema(ctxT(t)))
	_, err = d.db.ExecContext(ctxT(t), "CREATE TABLE effects (event_id text NOT NULL, note text NOT NULL)")
	require.NoError(t, err)
	return in
}

// effects is the number of rows handlers inserted for id.
func effects(t *testing.T, d testDB, id string) int {
	t.Helper()
	var n int
	require.NoError(t, d.db.QueryRowContext(ctxT(t), d.q("SELECT count(*) FROM effects WHERE event_id = $1"), id).Scan(&n))
	return n
}

func insertEffect(ctx context.Context, d testDB, tx *sql.Tx, e *envelope.Event, note string) error {
	_, err := tx.ExecContext(ctx, d.q("INSERT INTO effects (event_id, note) VALUES ($1, $2)"), e.ID, note)
	return err
}

// bench is a router on the in-memory bus with fast retries.
type bench struct {
	bus      *memory.Bus
	pub      *memory.Publisher
	router   *router.Router
	mu       sync.Mutex
	outcomes []router.Outcome
}

func newBench(t *testing.T, maxDeliver int) *bench {
	t.Helper()
	bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{
		{Name: "RES", Subjects: []string{"res.>"}},
		{Name: "DLQ", Subjects: []string{"dlq.>"}},
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	pub, err := memory.NewPublisher(bus, memory.PublisherConfig{})
	require.NoError(t, err)
	b := &bench{bus: bus, pub: pub}
	b.router, err = router.NewWithTransport(bus, router.Config{
		Stream:     "RES",
		MaxDeliver: maxDeliver,
		Backoff:    transport.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2, Jitter: -1},
		Logger:     watermill.NopLogger{},
		Observe: func(o router.Outcome) {
			b.mu.Lock()
			b.outcomes = append(b.outcomes, o)
			b.mu.Unlock()
		},
	})
	require.NoError(t, err)
	return b
}

func (b *bench) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(wait):
			t.Error("router did not stop")
		}
	})
	select {
	case <-b.router.Running():
	case err := <-done:
		t.Fatalf("router did not start: %v", err)
	}
}

// settled waits until n deliveries were settled and returns them.
func (b *bench) settled(t *testing.T, n int) []router.Outcome {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.outcomes) >= n
	}, wait, time.Millisecond, "%d deliveries settled", n)
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]router.Outcome(nil), b.outcomes...)
}

var t0 = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)

func event(id string) *envelope.Event {
	e := envelope.NewEvent("resource.created", "my-service", "org-1", t0, map[string]interface{}{"resource_id": id})
	e.ID = id
	return e
}
