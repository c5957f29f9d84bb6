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
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/inbox"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// The inbox scenario: router processes whose handler inserts one row per
// event into the service's database are SIGKILLed mid-load, the server
// once. With the inbox the table ends with exactly one row per event; the
// same run with a plain handler doing the same insert shows the duplicates
// the inbox absorbed.
const (
	envInboxRouter = "JETEVENTS_RELIABILITY_INBOX_ROUTER"
	inboxDurable   = "effects"
)

// inboxRouterSpec configures an inbox router process.
type inboxRouterSpec struct {
	Name, URL, Driver, DSN string
	Inbox                  bool
}

func runInboxRouterIfChild() {
	spec, ok := os.LookupEnv(envInboxRouter)
	if !ok {
		return
	}
	os.Exit(runInboxRouterChild(spec))
}

func runInboxRouterChild(specJSON string) int {
	fmt.Println("reliability: inbox router process")
	var spec inboxRouterSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s: %v\n", envInboxRouter, err)
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
	nc, err := jetstream.Connect(spec.URL, jetstream.WithName(spec.Name), jetstream.WithLogger(watermill.NopLogger{}),
		jetstream.WithReconnectBackoff(20*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		return fail("connect", err)
	}
	defer nc.Close()
	rt, err := router.New(nc, router.Config{
		Stream: relStream, AckWait: 3 * time.Second, Heartbeat: time.Second,
		Concurrency: 4, MaxDeliver: 1000, Logger: routerLogger(),
	})
	if err != nil {
		return fail("router", err)
	}
	insert := placeholders(spec.Driver, "INSERT INTO effects (event_id, process, at) VALUES ($1, $2, $3)")
	g := rt.Group(inboxDurable, "rel.>")
	if spec.Inbox {
		in, err := inbox.New(db, inbox.Config{})
		if err != nil {
			return fail("inbox", err)
		}
		in.On(g, relSubject, func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
			_, err := tx.ExecContext(ctx, insert, e.ID, spec.Name, time.Now().UnixMicro())
			return err
		})
	} else {
		g.On(relSubject, func(ctx context.Context, e *envelope.Event) error {
			_, err := db.ExecContext(ctx, insert, e.ID, spec.Name, time.Now().UnixMicro())
			return err
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
		fmt.Println(routerRunning)
	case err := <-runErr:
		return fail("Run at start", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	case err := <-runErr:
		return fail("Run returned by itself", err)
	}
	cancel()
	if err := <-runErr; err != nil {
		return fail("Run", err)
	}
	return 0
}

// TestInbox_router_processes_and_server_SIGKILLed_one_row_per_event: on
// PostgreSQL and SQLite, a router process handles a stream of events, its
// handler inserting one row per event through the inbox; it is SIGKILLed 5
// times mid-load (replaced each time) and the server once. In the end every
// event has exactly one row (0 lost, 0 duplicates). The same run with a
// plain handler doing the same insert is reported, not asserted: the
// duplicates it shows are the ones the inbox absorbed.
func TestInbox_router_processes_and_server_SIGKILLed_one_row_per_event(t *testing.T) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		for _, withInbox := range []bool{true, false} {
			name := fmt.Sprintf("inbox, %s: router SIGKILL x5, server x1", map[string]string{"postgres": "PostgreSQL", "sqlite": "SQLite"}[dialect])
			if !withInbox {
				name = fmt.Sprintf("the same without the inbox (%s; reported, not asserted)", dialect)
			}
			t.Run(fmt.Sprintf("%s/inbox=%v", dialect, withInbox), func(t *testing.T) {
				r := inboxCrash(t, name, dialect, withInbox)
				r.Asserted = withInbox
				record(t, r)
				assert.Equal(t, r.Events, r.Acked, "every event published")
				assert.Zero(t, r.Lost, "events without a row")
				if withInbox {
					assert.Zero(t, r.Duplicates, "events with more than one row")
				}
			})
		}
	}
}

func inboxCrash(t *testing.T, name, dialect string, withInbox bool) row {
	n := size(t, 10000, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioWait+5*time.Minute)
	defer cancel()
	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1, SyncAlways: true})
	url := c.URL(0)
	nc := connectTo(t, url, "reliability-test")
	applyStreams(t, nc, 1)
	js, err := natsjs.New(nc)
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
	_, err = db.ExecContext(ctx, "CREATE TABLE effects (event_id text NOT NULL, process text NOT NULL, at bigint NOT NULL)")
	require.NoError(t, err)
	if withInbox {
		in, err := inbox.New(db, inbox.Config{})
		require.NoError(t, err)
		require.NoError(t, in.CreateSchema(ctx))
	}

	events := makeEvents("ix", n)
	led := newLedger(events)
	publishAll(t, newPublisher(t, nc, led), led, events)
	handled := func() int {
		var k int
		if err := db.QueryRowContext(ctx, "SELECT count(DISTINCT event_id) FROM effects").Scan(&k); err != nil {
			return -1
		}
		return k
	}
	spec := func(i int) inboxRouterSpec {
		return inboxRouterSpec{Name: fmt.Sprintf("router-%d", i), URL: url, Driver: driver, DSN: dsn, Inbox: withInbox}
	}
	start := time.Now()
	proc := startChildProc(t, "router-0", envInboxRouter, spec(0), routerRunning)
	next := 1
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	const kills = 6 // 5 router processes, the server once (the fourth)
	var inFlight []int
	for k := 1; k <= kills; k++ {
		at := k * n / (kills + 2)
		require.True(t, waitUntil(scenarioWait, func() bool { return handled() >= at || proc.exitedByItself() }),
			"kill %d: %d events not handled within %s (%d)", k, at, scenarioWait, handled())
		require.False(t, proc.exitedByItself(), "%s exited by itself", proc.name)
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond) // a random point
		if k == 4 {
			require.NoError(t, c.Kill(0))
			require.NoError(t, c.Restart(0))
			continue
		}
		pending := ackPending(t, js, inboxDurable)
		require.NoError(t, proc.kill())
		inFlight = append(inFlight, pending)
		proc = startChildProc(t, fmt.Sprintf("router-%d", next), envInboxRouter, spec(next), routerRunning)
		next++
	}
	var state string
	done := waitUntil(scenarioWait, func() bool {
		var drained bool
		drained, state = consumerDrained(js, relStream, inboxDurable)
		return drained && handled() >= n
	})
	took := time.Since(start)
	assert.True(t, done, "not every event handled and acked within %s: %d of %d, durable %s", scenarioWait, handled(), n, state)
	require.NoError(t, proc.stop())

	rowsPer := map[string]int{}
	var firsts []int64 // each event's first row, in time order
	rows, err := db.QueryContext(ctx, "SELECT event_id, count(*), min(at) FROM effects GROUP BY event_id ORDER BY min(at)")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var k int
		var at int64
		require.NoError(t, rows.Scan(&id, &k, &at))
		rowsPer[id] = k
		firsts = append(firsts, at)
	}
	require.NoError(t, rows.Close())
	var longest time.Duration
	for i := 1; i < len(firsts); i++ {
		longest = max(longest, time.Duration(firsts[i]-firsts[i-1])*time.Microsecond)
	}
	acked, _, _, _ := led.progress()
	r := row{Scenario: name, Events: n, Acked: acked, Kills: kills, Took: took, LongestStall: longest, DeadLettered: streamMsgs(t, js, dlqStream)}
	for _, e := range events {
		switch k := rowsPer[e.ID]; {
		case k == 0:
			r.Lost++
		case k > 1:
			r.Duplicates += k - 1
		}
	}
	r.Notes = fmt.Sprintf("unacked deliveries at each router kill %v; %d router processes", inFlight, next)
	t.Log(r.Notes)
	return r
}
