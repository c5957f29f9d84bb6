//go:build reliability

package reliability_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/outbox"
)

// The outbox scenario: service processes (this binary re-executed) each
// write a business row and its event in one transaction, in a loop, while
// their relay runs; service processes are SIGKILLed at random points and
// the nats-server once. The business table is the truth of what
// committed: in the end the stream must hold exactly one event per
// committed row and none of any transaction that rolled back (on purpose,
// or cut by a kill), each subject in commit order.
const (
	envService     = "JETEVENTS_RELIABILITY_OUTBOX_SERVICE"
	serviceRunning = "reliability: service running"
	outboxStream   = "OUTBOX_REL"
	outboxPrefix   = "obx"
)

// serviceSpec configures a service process.
type serviceSpec struct {
	Name     string
	Driver   string // "pgx" or "sqlite"
	DSN      string
	URL      string // NATS
	Subjects []string
	// Target: the writer stops once the business table holds this many
	// committed rows; the relay runs on until the process is stopped.
	Target int
	// RollbackEvery: every RollbackEvery-th transaction publishes, writes
	// and then rolls back.
	RollbackEvery int
}

func runServiceIfChild() {
	spec, ok := os.LookupEnv(envService)
	if !ok {
		return
	}
	os.Exit(runServiceChild(spec))
}

// businessSchema is the service's own table and the commit counter whose
// values give the commit order (see outbox/order_test.go).
var businessSchema = []string{
	"CREATE TABLE business (event_id text PRIMARY KEY, subject text NOT NULL, commit_n bigint NOT NULL, writer text NOT NULL)",
	"CREATE TABLE counter (n bigint NOT NULL)",
	"INSERT INTO counter (n) VALUES (0)",
}

func placeholders(driver, q string) string {
	if driver != "sqlite" {
		return q
	}
	for i := 9; i >= 1; i-- {
		q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), "?")
	}
	return q
}

func runServiceChild(specJSON string) int {
	fmt.Println("reliability: service process")
	var spec serviceSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s: %v\n", envService, err)
		return 2
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "%s: %s: %v\n", spec.Name, what, err)
		return 1
	}
	db, err := sql.Open(spec.Driver, spec.DSN)
	if err != nil {
		return fail("open", err)
	}
	defer db.Close()
	ob, err := outbox.New(db, outbox.Config{})
	if err != nil {
		return fail("outbox", err)
	}
	nc, err := jetstream.Connect(spec.URL, jetstream.WithName(spec.Name), jetstream.WithLogger(watermill.NopLogger{}),
		jetstream.WithReconnectBackoff(20*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		return fail("connect", err)
	}
	defer nc.Close()
	pub, err := jetstream.NewPublisher(nc, jetstream.PublisherConfig{Logger: watermill.NopLogger{}, PublishTimeout: 2 * time.Second})
	if err != nil {
		return fail("publisher", err)
	}
	relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{
		Name: spec.Name, PublishTimeout: 2 * time.Second, LeaseTTL: 5 * time.Second,
		PollMax: 50 * time.Millisecond, DuplicateWindow: 10 * time.Minute, Logger: routerLogger(),
	})
	if err != nil {
		return fail("relay", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(ctx) }()

	writeCtx, stopWriting := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- writeLoop(writeCtx, db, ob, spec) }()
	fmt.Println(serviceRunning)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
wait:
	for {
		select {
		case err := <-writerDone:
			if err != nil {
				stopWriting()
				return fail("writer", err)
			}
			fmt.Println(spec.Name + ": writer done")
			writerDone = nil // a nil channel: wait for the stop
		case <-stop:
			break wait
		case <-eof:
			break wait
		}
	}
	stopWriting()
	cancel()
	if err := <-relayDone; err != nil {
		return fail("relay run", err)
	}
	st := relay.Stats()
	fmt.Printf("%s: stopped; relayed %d (%d duplicates), failed publishes %d\n", spec.Name, st.Relayed, st.Duplicates, st.Failed)
	return 0
}

// writeLoop commits transactions until the business table holds
// spec.Target rows: publish the event, then the business write with its
// commit position, then commit (or roll back every RollbackEvery-th).
func writeLoop(ctx context.Context, db *sql.DB, ob *outbox.Outbox, spec serviceSpec) error {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	insert := placeholders(spec.Driver, "INSERT INTO business (event_id, subject, commit_n, writer) VALUES ($1, $2, $3, $4)")
	for i := 0; ; i++ {
		if i%20 == 0 {
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM business").Scan(&n); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if n >= spec.Target {
				return nil
			}
		}
		id := fmt.Sprintf("%s-%d", spec.Name, i)
		subject := spec.Subjects[rng.IntN(len(spec.Subjects))]
		e := envelope.NewEvent("rel.created", spec.Name, "org-1", time.Now().UTC(), map[string]interface{}{"i": i})
		e.ID = id
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if err := ob.Publish(ctx, tx, subject, e); err != nil {
				return err
			}
			var n int64
			if err := tx.QueryRowContext(ctx, "UPDATE counter SET n = n + 1 RETURNING n").Scan(&n); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, insert, id, subject, n, spec.Name); err != nil {
				return err
			}
			if spec.RollbackEvery > 0 && i%spec.RollbackEvery == spec.RollbackEvery-1 {
				return nil // rolled back by the deferred Rollback
			}
			return tx.Commit()
		}()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case strings.Contains(err.Error(), "40P01"), strings.Contains(err.Error(), "40001"), strings.Contains(err.Error(), "SQLITE_BUSY"):
			// deadlock or serialization failure: a service retries
		default:
			return fmt.Errorf("tx %s: %w", id, err)
		}
	}
}

// TestOutbox_services_and_server_SIGKILLed_stream_holds_each_committed_event_once:
// on PostgreSQL and on SQLite, two service processes write rows and their
// events and relay them; service processes are SIGKILLed 5 times at random
// points (mid-transaction, mid-batch) and replaced, the nats-server is
// SIGKILLed once and restarted. In the end the stream holds exactly one
// event per committed business row (0 lost, 0 extra), none of a rolled-back
// transaction, and with two relays at once each subject's events are in
// commit order.
func TestOutbox_services_and_server_SIGKILLed_stream_holds_each_committed_event_once(t *testing.T) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		name := map[string]string{
			"postgres": "outbox, PostgreSQL: 2 services (writer + relay), service SIGKILL x5, server x1",
			"sqlite":   "outbox, SQLite: 2 services (writer + relay), service SIGKILL x5, server x1",
		}[dialect]
		t.Run(dialect, func(t *testing.T) {
			r := outboxCrash(t, name, dialect)
			record(t, r)
			assert.Zero(t, r.Lost, "committed rows whose event the stream lacks")
			assert.Zero(t, r.Duplicates, "events stored more than once, or without a committed row")
			assert.Equal(t, r.Events, r.Acked, "one stored event per committed row")
		})
	}
}

func outboxCrash(t *testing.T, name, dialect string) row {
	n := size(t, 10000, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioWait+5*time.Minute)
	defer cancel()
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1, SyncAlways: true})
	url := c.URL(0)
	nc := connectTo(t, url, "reliability-test")
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	_, err = jetstream.Apply(ctx, js, jetstream.StreamSpec{Name: outboxStream, Subjects: []string{outboxPrefix + ".>"}, Duplicates: 10 * time.Minute})
	require.NoError(t, err)

	driver, dsn := "pgx", ""
	if dialect == "postgres" {
		dsn = eventstest.NewPostgres(t).DSN
	} else {
		driver = "sqlite"
		dsn = "file:" + filepath.Join(t.TempDir(), "service.db") + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	}
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	for _, q := range businessSchema {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	ob, err := outbox.New(db, outbox.Config{})
	require.NoError(t, err)
	require.NoError(t, ob.CreateSchema(ctx))

	subjects := []string{outboxPrefix + ".a", outboxPrefix + ".b", outboxPrefix + ".c", outboxPrefix + ".d"}
	spec := func(i int) serviceSpec {
		return serviceSpec{Name: fmt.Sprintf("svc-%d", i), Driver: driver, DSN: dsn, URL: url, Subjects: subjects, Target: n, RollbackEvery: 10}
	}
	committed := func() int {
		var k int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM business").Scan(&k); err != nil {
			return -1
		}
		return k
	}
	start := time.Now()
	procs := []*routerProc{
		startChildProc(t, "svc-0", envService, spec(0), serviceRunning),
		startChildProc(t, "svc-1", envService, spec(1), serviceRunning),
	}
	next := 2
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const kills = 6 // 5 service processes, the server once (the third)
	var notes []string
	for k := 1; k <= kills; k++ {
		at := k * n / (kills + 2)
		require.True(t, waitUntil(scenarioWait, func() bool { return committed() >= at }), "kill %d: %d rows not committed within %s (%d)", k, at, scenarioWait, committed())
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // a random point, not the threshold's
		if k == 3 {
			require.NoError(t, c.Kill(0))
			// Writers go on committing while no relay can publish.
			from := committed()
			waitUntil(time.Minute, func() bool { return committed() >= from+n/20 })
			require.NoError(t, c.Restart(0))
			notes = append(notes, fmt.Sprintf("server killed at %d committed rows, restarted at %d", from, committed()))
			continue
		}
		i := rng.IntN(len(procs))
		for procs[i].exitedByItself() { // a writer done early: kill the other one
			i = (i + 1) % len(procs)
		}
		require.NoError(t, procs[i].kill())
		t.Logf("kill %d: SIGKILLed %s at %d committed rows", k, procs[i].name, committed())
		procs[i] = startChildProc(t, fmt.Sprintf("svc-%d", next), envService, spec(next), serviceRunning)
		next++
	}
	require.True(t, waitUntil(scenarioWait, func() bool {
		_, pending, _, err := ob.Backlog(ctx)
		return committed() >= n && err == nil && pending == 0
	}), "outbox not drained within %s of the last kill", scenarioWait)
	took := time.Since(start)
	for _, p := range procs {
		require.NoError(t, p.stop())
	}

	// The truth: committed rows, with their commit position.
	commitN := map[string]int64{}
	rows, err := db.QueryContext(ctx, "SELECT event_id, commit_n FROM business")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var k int64
		require.NoError(t, rows.Scan(&id, &k))
		commitN[id] = k
	}
	require.NoError(t, rows.Close())

	msgs := readStream(t, js, outboxStream)
	stored := map[string]int{}
	bySubject := map[string][]string{}
	var longest time.Duration
	for i, m := range msgs {
		stored[m.id]++
		bySubject[m.subject] = append(bySubject[m.subject], m.id)
		if i > 0 {
			longest = max(longest, m.time.Sub(msgs[i-1].time))
		}
	}
	r := row{Scenario: name, Events: len(commitN), Kills: kills, Took: took, LongestStall: longest, Asserted: true}
	extra, dup := 0, 0
	for id, k := range stored {
		if _, ok := commitN[id]; !ok {
			extra++
		} else {
			r.Acked++
		}
		dup += k - 1
	}
	for id := range commitN {
		if stored[id] == 0 {
			r.Lost++
		}
	}
	r.Duplicates = extra + dup
	inversions := 0
	var firstInversion string
	for subject, ids := range bySubject {
		for i := 1; i < len(ids); i++ {
			if commitN[ids[i-1]] > commitN[ids[i]] {
				inversions++
				if firstInversion == "" {
					firstInversion = fmt.Sprintf("%s: %s (commit %d) before %s (commit %d)", subject, ids[i-1], commitN[ids[i-1]], ids[i], commitN[ids[i]])
				}
			}
		}
	}
	assert.Zero(t, inversions, "per-subject order differs from commit order: %s", firstInversion)
	var rolledBackStored int
	for id := range stored {
		if i := strings.LastIndexByte(id, '-'); i > 0 {
			var k int
			if _, err := fmt.Sscan(id[i+1:], &k); err == nil && k%10 == 9 {
				rolledBackStored++
			}
		}
	}
	assert.Zero(t, rolledBackStored, "events of transactions rolled back on purpose")
	notes = append(notes, fmt.Sprintf("%d committed rows, %d events stored (%d extra, %d copies), %d subjects in commit order (%d inversions), %d processes started",
		len(commitN), len(msgs), extra, dup, len(bySubject), inversions, next))
	r.Notes = strings.Join(notes, "; ")
	t.Log(r.Notes)
	return r
}

type streamMsg struct {
	id, subject string
	time        time.Time
}

// readStream reads every message of stream in order with an ordered
// consumer.
func readStream(t *testing.T, js natsjs.JetStream, stream string) []streamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	total := int(info.State.Msgs)
	cons, err := js.OrderedConsumer(ctx, stream, natsjs.OrderedConsumerConfig{})
	require.NoError(t, err)
	var mu sync.Mutex
	var out []streamMsg
	var got atomic.Int64
	cc, err := cons.Consume(func(m natsjs.Msg) {
		md, _ := m.Metadata()
		mu.Lock()
		out = append(out, streamMsg{id: m.Headers().Get("Nats-Msg-Id"), subject: m.Subject(), time: md.Timestamp})
		mu.Unlock()
		got.Add(1)
	})
	require.NoError(t, err)
	defer cc.Stop()
	require.True(t, waitUntil(2*time.Minute, func() bool { return int(got.Load()) >= total }), "read %d of %d", got.Load(), total)
	mu.Lock()
	defer mu.Unlock()
	return append([]streamMsg(nil), out...)
}
