package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/outbox"
)

// The order tests need the true commit order of transactions, which no
// row's id gives. Each transaction ends by incrementing one counter row
// (a row lock held until commit: the next increment waits for this
// commit) and recording the value next to its event id: the values are the
// commit order. The increment comes after Publish, as the business writes
// of a real transaction would, so that the counter does not itself order
// the Publish calls.

func orderSchema(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := ctxT(t)
	for _, q := range []string{
		"CREATE TABLE counter (n bigint NOT NULL)",
		"INSERT INTO counter (n) VALUES (0)",
		"CREATE TABLE commits (event_id text PRIMARY KEY, n bigint NOT NULL)",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
}

// commitMark increments the counter and records e's commit position.
func commitMark(ctx context.Context, tx *sql.Tx, dialect, eventID string) error {
	var n int64
	q, ins := "UPDATE counter SET n = n + 1 RETURNING n", "INSERT INTO commits (event_id, n) VALUES ($1, $2)"
	if dialect == "sqlite" {
		ins = "INSERT INTO commits (event_id, n) VALUES (?, ?)"
	}
	if err := tx.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, ins, eventID, n)
	return err
}

// checkCommitOrder compares each subject's order in the stream with the
// commit order of the events' transactions, and returns the first
// inversion ("" if none), and the committed ids.
func checkCommitOrder(t *testing.T, db *sql.DB, js natsjs.JetStream, name string) (inversion string, committed map[string]int64) {
	t.Helper()
	committed = map[string]int64{}
	rows, err := db.QueryContext(ctxT(t), "SELECT event_id, n FROM commits")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		require.NoError(t, rows.Scan(&id, &n))
		committed[id] = n
	}
	require.NoError(t, rows.Err())
	for subject, ids := range storedIDs(t, js, name) {
		for i := 1; i < len(ids); i++ {
			if committed[ids[i-1]] > committed[ids[i]] && inversion == "" {
				inversion = fmt.Sprintf("%s: %s (commit %d) stored before %s (commit %d)", subject, ids[i-1], committed[ids[i-1]], ids[i], committed[ids[i]])
			}
		}
	}
	return inversion, committed
}

// TestPublish_PostgreSQL_two_transactions_on_one_subject_reach_the_stream_in_commit_order
// replays the interleaving that breaks id order: T1 inserts its row (id
// 1), T2 inserts its row (id 2) and commits first, then T1 commits; a
// relay reading by id publishes T1's event first, against commit order.
// The control inserts the rows with plain SQL and shows the check catches
// that. With Publish, T2's insert waits for T1's transaction (the
// subject's writer lock), so T2 cannot commit first: the stream holds the
// events in commit order.
func TestPublish_PostgreSQL_two_transactions_on_one_subject_reach_the_stream_in_commit_order(t *testing.T) {
	srv := eventstest.NewServer(t)
	pg := eventstest.NewPostgres(t)
	tests := []struct {
		name      string
		raw       bool // plain INSERT: no writer lock
		wantOrder bool
	}{
		{"control: rows inserted without Publish", true, false},
		{"Publish", false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			d := postgresDB(t, pg.NewDatabase(t))
			orderSchema(t, d.db)
			o := newOutbox(t, d.db, outbox.Config{})
			name := fmt.Sprintf("ORDER%d", i)
			subject := fmt.Sprintf("order%d.res", i)
			stream(t, srv.JS, name, subject)
			publish := func(tx *sql.Tx, id string) error {
				if !tt.raw {
					return o.Publish(ctx, tx, subject, event(id))
				}
				msg, err := marshaler.Default().PublishMsg(ctx, subject, event(id), 0)
				require.NoError(t, err)
				_, err = tx.ExecContext(ctx, "INSERT INTO jetevents_outbox (subject, event_id, event_type, payload) VALUES ($1, $2, $3, $4)",
					subject, id, "resource.created", msg.Data)
				return err
			}

			t1, err := d.db.BeginTx(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, publish(t1, "T1"))
			t2, err := d.db.BeginTx(ctx, nil)
			require.NoError(t, err)
			t2Published := make(chan error, 1)
			go func() { t2Published <- publish(t2, "T2") }()

			if tt.raw {
				// T2 is not held: it commits first.
				require.NoError(t, <-t2Published)
				require.NoError(t, commitMark(ctx, t2, d.name, "T2"))
				require.NoError(t, t2.Commit())
				require.NoError(t, commitMark(ctx, t1, d.name, "T1"))
				require.NoError(t, t1.Commit())
			} else {
				// T2's Publish waits on T1's lock of the subject.
				require.Eventually(t, func() bool {
					var waiting int
					require.NoError(t, d.db.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting))
					return waiting == 1
				}, wait, time.Millisecond, "T2's Publish waits for T1")
				select {
				case err := <-t2Published:
					t.Fatalf("T2's Publish returned while T1 is open: %v", err)
				default:
				}
				require.NoError(t, commitMark(ctx, t1, d.name, "T1"))
				require.NoError(t, t1.Commit())
				require.NoError(t, <-t2Published)
				require.NoError(t, commitMark(ctx, t2, d.name, "T2"))
				require.NoError(t, t2.Commit())
			}

			// One relay, after both commits: it sees both rows at once.
			runRelay(t, newRelay(t, o, publisher(t, srv), outbox.RelayConfig{}))
			require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
			inversion, _ := checkCommitOrder(t, d.db, srv.JS, name)
			if tt.wantOrder {
				assert.Empty(t, inversion)
			} else {
				assert.NotEmpty(t, inversion, "the control must show the inversion the check exists for")
				t.Logf("control: %s", inversion)
			}
		})
	}
}

// TestRelay_two_relays_concurrent_writers_keep_commit_order_per_subject:
// writers commit (and roll back) transactions concurrently on a few
// subjects while two relays run with small batches. In the end the stream
// holds exactly one copy of each committed event and none of the
// rolled-back ones, and each subject's events are in commit order.
func TestRelay_two_relays_concurrent_writers_keep_commit_order_per_subject(t *testing.T) {
	srv := eventstest.NewServer(t)
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := ctxT(t)
			orderSchema(t, d.db)
			o := newOutbox(t, d.db, outbox.Config{})
			name := "CONC_" + strings.ToUpper(d.name)
			stream(t, srv.JS, name, d.name+".>")
			pub := publisher(t, srv)
			relays := []*outbox.Relay{
				newRelay(t, o, pub, outbox.RelayConfig{Name: "relay-a", BatchSize: 7, Concurrency: 2, PollMax: 20 * time.Millisecond}),
				newRelay(t, o, pub, outbox.RelayConfig{Name: "relay-b", BatchSize: 5, Concurrency: 3, PollMax: 20 * time.Millisecond}),
			}
			for _, r := range relays {
				runRelay(t, r)
			}

			const writers, perWriter = 6, 40
			subjects := []string{d.name + ".a", d.name + ".b", d.name + ".c"}
			var mu sync.Mutex
			rolledBack := map[string]bool{}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 42))
					for i := range perWriter {
						id := fmt.Sprintf("w%d-%03d", w, i)
						err := writeOnce(ctx, d, o, subjects[rng.IntN(len(subjects))], id, rng.IntN(10) == 0, rng)
						if err == errRolledBack {
							mu.Lock()
							rolledBack[id] = true
							mu.Unlock()
							continue
						}
						if err != nil {
							t.Errorf("writer %d tx %d: %v", w, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 10*time.Millisecond)

			inversion, committed := checkCommitOrder(t, d.db, srv.JS, name)
			assert.Empty(t, inversion)
			byID := map[string]int{}
			for _, ids := range storedIDs(t, srv.JS, name) {
				for _, id := range ids {
					byID[id]++
				}
			}
			for id := range committed {
				assert.Equal(t, 1, byID[id], "committed event %s stored once", id)
			}
			for id := range rolledBack {
				assert.Zero(t, byID[id], "rolled-back event %s stored", id)
			}
			assert.Len(t, byID, len(committed), "nothing else stored")
			assert.Equal(t, writers*perWriter, len(committed)+len(rolledBack))
			a, b := relays[0].Stats(), relays[1].Stats()
			t.Logf("%s: %d committed, %d rolled back; relay-a relayed %d, relay-b %d", d.name, len(committed), len(rolledBack), a.Relayed, b.Relayed)
			assert.EqualValues(t, len(committed), a.Relayed+b.Relayed-a.Duplicates-b.Duplicates)
		})
	}
}

var errRolledBack = fmt.Errorf("rolled back on purpose")

// writeOnce is one service transaction: publish, business write (the
// commit mark), commit, or roll back when rollback is set. Deadlocks and
// serialization failures are retried like a service would.
func writeOnce(ctx context.Context, d testDB, o *outbox.Outbox, subject, id string, rollback bool, rng *rand.Rand) error {
	for {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		err = o.Publish(ctx, tx, subject, event(id))
		if err == nil && rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond) // widen the window between Publish and commit
		}
		if err == nil {
			err = commitMark(ctx, tx, d.name, id)
		}
		if err == nil && rollback {
			_ = tx.Rollback()
			return errRolledBack
		}
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if err != nil && (strings.Contains(err.Error(), "40P01") || strings.Contains(err.Error(), "40001")) {
			continue
		}
		return err
	}
}
