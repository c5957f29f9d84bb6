package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	natsjs "github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/inbox"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/outbox"
	"github.com/jetevents/events/router"
)

// The outbox and inbox rows. They need a database, and what they measure is
// a service's transaction and its event together, so they do not fit the
// Variant/Trial harness (one publish or consume loop over prepared events):
// each row here builds its own database, writers or router, on the same
// embedded server, and is timed from its first transaction (or first
// stored event) to the last event stored (or handled), every event checked.
//
//   - write: W writers each commit transactions that insert a business row
//     and publish its event. dual-write (the baseline, the seed's pattern):
//     commit, then jetstream.Publisher.Publish; outbox: outbox.Publish in the
//     transaction, a relay running. Latency: from the commit's return to the
//     event stored (dual-write: to Publish's return; outbox: the stored
//     message's stream timestamp), p50 and p99.
//   - relay: N rows already committed, the relay started: time to store them
//     all, on 1 subject and on 8; the baseline direct-sync publishes the
//     same events one by one with jetstream.Publisher.Publish, which is
//     what the relay does per subject.
//   - inbox: a router consuming N stored events, each handler inserting one
//     row: plain-handler (the baseline: the insert in autocommit) against
//     inbox (the insert and the inbox record in one transaction).

// OutboxParams configure RunOutbox.
type OutboxParams struct {
	// N is the number of events per row. Default 5000.
	N int
	// Writers is the number of concurrent writers of the write rows.
	// Default 4.
	Writers int
	// Concurrency of the inbox rows' router. Default 8.
	Concurrency int
	// Databases: "postgres", "sqlite" or both (default).
	Databases []string
	// PGFsync keeps PostgreSQL's fsync on (as in production). Default
	// true through the command's flag; SQLite runs with its defaults
	// (WAL, synchronous FULL).
	PGFsync bool
	// Rounds runs every row this many times, round by round, and reports
	// each row's median (events/s, p50, p99). Default 1.
	Rounds int
	// Log receives one line per row as it finishes (nil: none).
	Log io.Writer
}

// OutboxResult is one row.
type OutboxResult struct {
	Op, Database, Variant string
	N                     int
	Elapsed               time.Duration
	// P50 and P99 are the commit-to-stored latencies of the write rows.
	P50, P99 time.Duration
	Note     string
}

// EventsPerSec is N over Elapsed.
func (r OutboxResult) EventsPerSec() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// RunOutbox measures the outbox and inbox rows on env's server.
func RunOutbox(ctx context.Context, env *Env, p OutboxParams) ([]OutboxResult, error) {
	if p.N <= 0 {
		p.N = 5000
	}
	if p.Writers <= 0 {
		p.Writers = 4
	}
	if p.Concurrency <= 0 {
		p.Concurrency = 8
	}
	if len(p.Databases) == 0 {
		p.Databases = []string{"postgres", "sqlite"}
	}
	if p.Rounds <= 0 {
		p.Rounds = 1
	}
	var pg *eventstest.Postgres
	if slices.Contains(p.Databases, "postgres") {
		var err error
		if pg, err = eventstest.StartPostgres(eventstest.PostgresConfig{Fsync: p.PGFsync, MaxConnections: 200}); err != nil {
			return nil, err
		}
		defer pg.Stop()
	}
	tmp, err := osMkdirTemp()
	if err != nil {
		return nil, err
	}
	defer osRemoveAll(tmp)
	var out []OutboxResult
	files := 0
	newDB := func(dialect, name string) (*sql.DB, func(), error) {
		if dialect == "postgres" {
			dbName, dsn, err := pg.CreateDatabase()
			if err != nil {
				return nil, nil, err
			}
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				return nil, nil, err
			}
			db.SetMaxIdleConns(64)
			return db, func() { _ = db.Close(); _ = pg.DropDatabase(dbName) }, nil
		}
		files++
		db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, fmt.Sprintf("%s-%d.db", name, files))+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			return nil, nil, err
		}
		return db, func() { _ = db.Close() }, nil
	}
	rows := []struct {
		op, variant string
		run         func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error)
	}{
		{"write", "dual-write", benchDualWrite},
		{"write", "outbox", benchOutboxWrite(1)},
		{"write", "outbox-8-subjects", benchOutboxWrite(8)},
		{"write", "outbox-paced-500/s", benchOutboxPaced(500)},
		{"relay", "direct-sync", benchDirectSync},
		{"relay", "relay-1-subject", benchRelay(1)},
		{"relay", "relay-8-subjects", benchRelay(8)},
		{"inbox", "plain-handler", benchHandler(false)},
		{"inbox", "inbox", benchHandler(true)},
	}
	for range p.Rounds {
		for _, dialect := range p.Databases {
			for i, row := range rows {
				db, closeDB, err := newDB(dialect, fmt.Sprintf("row-%d", i))
				if err != nil {
					return nil, err
				}
				r, err := row.run(ctx, env, db, dialect, p)
				closeDB()
				if err != nil {
					return nil, fmt.Errorf("%s/%s on %s: %w", row.op, row.variant, dialect, err)
				}
				r.Op, r.Variant, r.Database = row.op, row.variant, dialect
				if p.Log != nil {
					fmt.Fprintf(p.Log, "%-6s %-17s %-8s %8.0f events/s  p50 %s p99 %s\n", r.Op, r.Variant, r.Database, r.EventsPerSec(), r.P50, r.P99)
				}
				out = append(out, r)
			}
		}
	}
	return medianRows(out), nil
}

// medianRows keeps one row per (operation, database, variant): the round
// with the median throughput, its latencies with it.
func medianRows(rs []OutboxResult) []OutboxResult {
	type key struct{ op, db, v string }
	var order []key
	by := map[key][]OutboxResult{}
	for _, r := range rs {
		k := key{r.Op, r.Database, r.Variant}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	out := make([]OutboxResult, 0, len(order))
	for _, k := range order {
		g := by[k]
		slices.SortFunc(g, func(a, b OutboxResult) int { return cmpFloat(a.EventsPerSec(), b.EventsPerSec()) })
		m := g[len(g)/2]
		if len(g) > 1 {
			m.Note += fmt.Sprintf(" (median of %d: %.0f-%.0f/s)", len(g), g[0].EventsPerSec(), g[len(g)-1].EventsPerSec())
		}
		out = append(out, m)
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// WriteOutboxTable writes the rows as a markdown table, each against its
// operation's baseline on the same database.
func WriteOutboxTable(w io.Writer, results []OutboxResult) error {
	base := map[string]float64{}
	for _, r := range results {
		if r.Variant == "dual-write" || r.Variant == "direct-sync" || r.Variant == "plain-handler" {
			base[r.Op+"/"+r.Database] = r.EventsPerSec()
		}
	}
	var b strings.Builder
	b.WriteString("| operation | database | variant | events | events/s | vs baseline | commit to stored p50 | p99 | note |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		ratio := "n/a"
		if bl := base[r.Op+"/"+r.Database]; bl > 0 && !strings.Contains(r.Variant, "paced") {
			ratio = fmt.Sprintf("%.2fx", r.EventsPerSec()/bl)
		}
		lat := func(d time.Duration) string {
			if d == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.0f | %s | %s | %s | %s |\n", r.Op, r.Database, r.Variant, r.N, r.EventsPerSec(), ratio, lat(r.P50), lat(r.P99), r.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchStream creates a stream of its own for a row and returns its
// subject prefix.
func benchStream(ctx context.Context, env *Env) (name, prefix string, err error) {
	k := env.seq.Add(1)
	name, prefix = fmt.Sprintf("OBX_%d", k), fmt.Sprintf("obx%d", k)
	_, err = env.js.CreateStream(ctx, natsjs.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: natsjs.FileStorage})
	return name, prefix, err
}

func benchEvent(i int) *envelope.Event {
	e := envelope.NewEvent("resource.created", "bench", "org-1", time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC),
		map[string]interface{}{"resource_id": fmt.Sprintf("res-%d", i), "type": "bucket"})
	return e
}

const businessDDL = "CREATE TABLE resources (id text PRIMARY KEY, type text NOT NULL)"

func insertResource(dialect string) string {
	if dialect == "sqlite" {
		return "INSERT INTO resources (id, type) VALUES (?, ?)"
	}
	return "INSERT INTO resources (id, type) VALUES ($1, $2)"
}

func newBenchPublisher(env *Env, name string) (*jetstream.Publisher, func(), error) {
	nc, err := env.Connect(name)
	if err != nil {
		return nil, nil, err
	}
	pub, err := jetstream.NewPublisher(nc, jetstream.PublisherConfig{Logger: watermill.NopLogger{}})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return pub, func() { _ = pub.Close(); nc.Close() }, nil
}

// writers runs W goroutines over n transactions; each calls do(i).
func writers(n, w int, do func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, w)
	for range w {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func benchDualWrite(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
	_, prefix, err := benchStream(ctx, env)
	if err != nil {
		return OutboxResult{}, err
	}
	if _, err := db.ExecContext(ctx, businessDDL); err != nil {
		return OutboxResult{}, err
	}
	pub, closePub, err := newBenchPublisher(env, "bench-dual-write")
	if err != nil {
		return OutboxResult{}, err
	}
	defer closePub()
	lat := make([]time.Duration, p.N)
	ins := insertResource(dialect)
	start := time.Now()
	err = writers(p.N, p.Writers, func(i int) error {
		e := benchEvent(i)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ins, fmt.Sprintf("res-%d", i), "bucket"); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		committed := time.Now()
		if err := pub.Publish(ctx, prefix+".resource.created", e); err != nil {
			return err
		}
		lat[i] = time.Since(committed)
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return OutboxResult{}, err
	}
	r := OutboxResult{N: p.N, Elapsed: elapsed, Note: fmt.Sprintf("%d writers; the event is lost if the process dies between commit and ack", p.Writers)}
	r.P50, r.P99 = percentiles(lat)
	return r, nil
}

func benchOutboxWrite(subjects int) func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
	return func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
		return outboxWrite(ctx, env, db, dialect, p, subjects)
	}
}

// benchOutboxPaced is the outbox row at a steady rate far below the
// database's limit: the relay's lag when it is not racing a saturated
// database (one writer, one transaction every 1/rate s).
func benchOutboxPaced(rate int) func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
	return func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
		p.Writers = 1
		p.N = min(p.N, 2*rate) // two seconds of it
		r, err := outboxWriteAt(ctx, env, db, dialect, p, 1, time.Second/time.Duration(rate))
		r.Note = fmt.Sprintf("1 writer, one transaction every %s; throughput is the pace", time.Second/time.Duration(rate))
		return r, err
	}
}

func outboxWrite(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams, subjects int) (OutboxResult, error) {
	return outboxWriteAt(ctx, env, db, dialect, p, subjects, 0)
}

func outboxWriteAt(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams, subjects int, every time.Duration) (OutboxResult, error) {
	name, prefix, err := benchStream(ctx, env)
	if err != nil {
		return OutboxResult{}, err
	}
	if _, err := db.ExecContext(ctx, businessDDL); err != nil {
		return OutboxResult{}, err
	}
	ob, err := outbox.New(db, outbox.Config{})
	if err != nil {
		return OutboxResult{}, err
	}
	if err := ob.CreateSchema(ctx); err != nil {
		return OutboxResult{}, err
	}
	pub, closePub, err := newBenchPublisher(env, "bench-relay")
	if err != nil {
		return OutboxResult{}, err
	}
	defer closePub()
	relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{Logger: watermill.NopLogger{}, PollMin: time.Millisecond, PollMax: 50 * time.Millisecond})
	if err != nil {
		return OutboxResult{}, err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(rctx) }()
	defer func() { stopRelay(); <-relayDone }()

	commits := make(map[string]time.Time, p.N)
	var mu sync.Mutex
	ins := insertResource(dialect)
	start := time.Now()
	err = writers(p.N, p.Writers, func(i int) error {
		if every > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		}
		e := benchEvent(i)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ins, fmt.Sprintf("res-%d", i), "bucket"); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := ob.Publish(ctx, tx, fmt.Sprintf("%s.s%d", prefix, i%subjects), e); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		now := time.Now()
		mu.Lock()
		commits[e.ID] = now
		mu.Unlock()
		return nil
	})
	if err != nil {
		return OutboxResult{}, err
	}
	stored, err := waitStored(ctx, env, name, p.N)
	if err != nil {
		return OutboxResult{}, err
	}
	var last time.Time
	lat := make([]time.Duration, 0, p.N)
	for id, at := range stored {
		c, ok := commits[id]
		if !ok {
			return OutboxResult{}, fmt.Errorf("%w: stored event %s was never committed", ErrVerify, id)
		}
		lat = append(lat, max(at.Sub(c), 0))
		if at.After(last) {
			last = at
		}
	}
	r := OutboxResult{N: p.N, Elapsed: last.Sub(start), Note: fmt.Sprintf("%d writers on %d subject(s), relay woken by %s", p.Writers, subjects, map[string]string{"postgres": "NOTIFY", "sqlite": "polling (1-50 ms)"}[dialect])}
	r.P50, r.P99 = percentiles(lat)
	return r, nil
}

// waitStored reads stream until it holds n messages and returns each
// event id's stored time (the server's timestamp).
func waitStored(ctx context.Context, env *Env, stream string, n int) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cons, err := env.js.OrderedConsumer(ctx, stream, natsjs.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, n)
	for len(out) < n {
		batch, err := cons.Fetch(500, natsjs.FetchMaxWait(time.Second))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if _, dup := out[m.Headers().Get("Nats-Msg-Id")]; dup {
				return nil, fmt.Errorf("%w: event %s stored twice", ErrVerify, m.Headers().Get("Nats-Msg-Id"))
			}
			out[m.Headers().Get("Nats-Msg-Id")] = md.Timestamp
		}
		if err := batch.Error(); err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %d of %d events stored: %w", ErrVerify, len(out), n, err)
		}
	}
	return out, nil
}

func benchDirectSync(ctx context.Context, env *Env, _ *sql.DB, _ string, p OutboxParams) (OutboxResult, error) {
	name, prefix, err := benchStream(ctx, env)
	if err != nil {
		return OutboxResult{}, err
	}
	pub, closePub, err := newBenchPublisher(env, "bench-direct")
	if err != nil {
		return OutboxResult{}, err
	}
	defer closePub()
	events := make([]*envelope.Event, p.N)
	for i := range events {
		events[i] = benchEvent(i)
	}
	start := time.Now()
	for _, e := range events {
		if err := pub.Publish(ctx, prefix+".resource.created", e); err != nil {
			return OutboxResult{}, err
		}
	}
	elapsed := time.Since(start)
	if _, err := waitStored(ctx, env, name, p.N); err != nil {
		return OutboxResult{}, err
	}
	return OutboxResult{N: p.N, Elapsed: elapsed, Note: "one publish at a time, each waiting for its ack (no database)"}, nil
}

func benchRelay(subjects int) func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
	return func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
		name, prefix, err := benchStream(ctx, env)
		if err != nil {
			return OutboxResult{}, err
		}
		ob, err := outbox.New(db, outbox.Config{})
		if err != nil {
			return OutboxResult{}, err
		}
		if err := ob.CreateSchema(ctx); err != nil {
			return OutboxResult{}, err
		}
		// The rows, committed before the relay starts (100 per transaction:
		// the fill is not what is measured).
		for i := 0; i < p.N; i += 100 {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return OutboxResult{}, err
			}
			for j := i; j < min(i+100, p.N); j++ {
				if err := ob.Publish(ctx, tx, fmt.Sprintf("%s.s%d", prefix, j%subjects), benchEvent(j)); err != nil {
					_ = tx.Rollback()
					return OutboxResult{}, err
				}
			}
			if err := tx.Commit(); err != nil {
				return OutboxResult{}, err
			}
		}
		pub, closePub, err := newBenchPublisher(env, "bench-relay")
		if err != nil {
			return OutboxResult{}, err
		}
		defer closePub()
		relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{Logger: watermill.NopLogger{}, PollMin: time.Millisecond, PollMax: 20 * time.Millisecond})
		if err != nil {
			return OutboxResult{}, err
		}
		start := time.Now()
		rctx, stopRelay := context.WithCancel(ctx)
		relayDone := make(chan error, 1)
		go func() { relayDone <- relay.Run(rctx) }()
		// Done when the relay counted every row stored (read from memory,
		// not the database, so that watching costs the run nothing).
		for relay.Stats().Relayed < uint64(p.N) {
			select {
			case err := <-relayDone:
				stopRelay()
				return OutboxResult{}, fmt.Errorf("relay stopped: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		elapsed := time.Since(start)
		stopRelay()
		if err := <-relayDone; err != nil {
			return OutboxResult{}, err
		}
		if _, err := waitStored(ctx, env, name, p.N); err != nil {
			return OutboxResult{}, err
		}
		return OutboxResult{N: p.N, Elapsed: elapsed, Note: fmt.Sprintf("batches of %d rows; within a subject one publish at a time (order), subjects 16 at once", outbox.DefaultBatchSize)}, nil
	}
}

func benchHandler(withInbox bool) func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
	return func(ctx context.Context, env *Env, db *sql.DB, dialect string, p OutboxParams) (OutboxResult, error) {
		name, prefix, err := benchStream(ctx, env)
		if err != nil {
			return OutboxResult{}, err
		}
		if _, err := db.ExecContext(ctx, businessDDL); err != nil {
			return OutboxResult{}, err
		}
		pub, closePub, err := newBenchPublisher(env, "bench-fill")
		if err != nil {
			return OutboxResult{}, err
		}
		events := make([]*envelope.Event, p.N)
		for i := range events {
			events[i] = benchEvent(i)
		}
		for i := 0; i < p.N; i += 100 {
			if err := pub.PublishBatch(ctx, prefix+".resource.created", events[i:min(i+100, p.N)]...); err != nil {
				closePub()
				return OutboxResult{}, err
			}
		}
		closePub()
		nc, err := env.Connect("bench-router")
		if err != nil {
			return OutboxResult{}, err
		}
		defer nc.Close()
		r, err := router.New(nc, router.Config{Stream: name, Concurrency: p.Concurrency, Logger: watermill.NopLogger{}})
		if err != nil {
			return OutboxResult{}, err
		}
		var handled atomic.Int64
		done := make(chan struct{})
		count := func() {
			if handled.Add(1) == int64(p.N) {
				close(done)
			}
		}
		ins := insertResource(dialect)
		type created struct {
			ResourceID string `json:"resource_id"`
			Type       string `json:"type"`
		}
		g := r.Group("bench", prefix+".>")
		if withInbox {
			in, err := inbox.New(db, inbox.Config{})
			if err != nil {
				return OutboxResult{}, err
			}
			if err := in.CreateSchema(ctx); err != nil {
				return OutboxResult{}, err
			}
			inbox.Handle(in, g, "resource.created", func(ctx context.Context, tx *sql.Tx, e *envelope.Event, d created) error {
				if _, err := tx.ExecContext(ctx, ins, d.ResourceID, d.Type); err != nil {
					return err
				}
				count()
				return nil
			})
		} else {
			router.Handle(g, "resource.created", func(ctx context.Context, e *envelope.Event, d created) error {
				if _, err := db.ExecContext(ctx, ins, d.ResourceID, d.Type); err != nil {
					return err
				}
				count()
				return nil
			})
		}
		rctx, stop := context.WithCancel(ctx)
		runDone := make(chan error, 1)
		start := time.Now()
		go func() { runDone <- r.Run(rctx) }()
		var elapsed time.Duration
		select {
		case <-done:
			elapsed = time.Since(start)
		case err := <-runDone:
			stop()
			return OutboxResult{}, fmt.Errorf("router: %w", err)
		case <-time.After(5 * time.Minute):
			stop()
			<-runDone
			return OutboxResult{}, fmt.Errorf("%w: %d of %d handled", ErrVerify, handled.Load(), p.N)
		}
		stop()
		if err := <-runDone; err != nil {
			return OutboxResult{}, err
		}
		var rowsN int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM resources").Scan(&rowsN); err != nil {
			return OutboxResult{}, err
		}
		if rowsN != p.N {
			return OutboxResult{}, fmt.Errorf("%w: %d rows for %d events", ErrVerify, rowsN, p.N)
		}
		note := fmt.Sprintf("router Concurrency %d; the insert in autocommit", p.Concurrency)
		if withInbox {
			note = fmt.Sprintf("router Concurrency %d; the insert and the inbox record in one transaction", p.Concurrency)
		}
		return OutboxResult{N: p.N, Elapsed: elapsed, Note: note}, nil
	}
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "jetevents-bench-outbox-") }
func osRemoveAll(dir string)       { _ = os.RemoveAll(dir) }
