package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/outbox"
)

// The seed's service code takes an events.Publisher: the outbox's
// transaction-bound publisher is one.
var _ events.Publisher = (*outbox.TxPublisher)(nil)

// TestPublish_event_is_stored_only_if_its_transaction_commits: a
// transaction that writes a business row and publishes through the outbox
// commits both; one that rolls back leaves neither, and the relay stores
// exactly the committed event, once.
func TestPublish_event_is_stored_only_if_its_transaction_commits(t *testing.T) {
	srv := eventstest.NewServer(t)
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := ctxT(t)
			name := "RES_" + d.name
			stream(t, srv.JS, name, d.name+".>")
			o := newOutbox(t, d.db, outbox.Config{})
			_, err := d.db.ExecContext(ctx, "CREATE TABLE resources (id text PRIMARY KEY)")
			require.NoError(t, err)
			create := func(id string, commit bool) {
				tx, err := d.db.BeginTx(ctx, nil)
				require.NoError(t, err)
				_, err = tx.ExecContext(ctx, rebind(d.name, "INSERT INTO resources (id) VALUES ($1)"), id)
				require.NoError(t, err)
				require.NoError(t, o.Publisher(tx).Publish(ctx, d.name+".resource.created", event(id)))
				if commit {
					require.NoError(t, tx.Commit())
				} else {
					require.NoError(t, tx.Rollback())
				}
			}
			create("committed", true)
			create("rolled-back", false)
			assert.EqualValues(t, 1, pending(t, o), "one row: the committed one")

			r := newRelay(t, o, publisher(t, srv), outbox.RelayConfig{})
			stop := runRelay(t, r)
			require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
			stop()
			got := stored(t, srv.JS, name)
			require.Len(t, got, 1)
			assert.Equal(t, "committed", got[0].Header.Get("Nats-Msg-Id"))
			var n int
			require.NoError(t, d.db.QueryRowContext(ctx, "SELECT count(*) FROM resources").Scan(&n))
			assert.Equal(t, 1, n, "the rolled-back resource is not there either")
			assert.Equal(t, outbox.RelayStats{Relayed: 1}, r.Stats())
		})
	}
}

func rebind(dialect, q string) string {
	if dialect == "sqlite" {
		return "INSERT INTO resources (id) VALUES (?)"
	}
	return q
}

// TestRelay_stores_what_a_direct_publish_would: the relay's message is
// byte for byte the one jetstream.Publisher stores for the same event and
// context: payload, ce-* headers, Nats-Msg-Id, and the correlation and
// causation ids and trace context Publish found in its context.
func TestRelay_stores_what_a_direct_publish_would(t *testing.T) {
	srv := eventstest.NewServer(t)
	stream(t, srv.JS, "RES", "res.>")
	d := sqliteDB(t)
	o := newOutbox(t, d.db, outbox.Config{})

	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=value")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	ctx := trace.ContextWithSpanContext(envelope.WithRelations(ctxT(t), "conversation-1", "cause-1"), sc)

	e := event("evt-1")
	tx, err := d.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, o.Publish(ctx, tx, "res.created", e))
	require.NoError(t, tx.Commit())
	runRelay(t, newRelay(t, o, publisher(t, srv), outbox.RelayConfig{}))
	require.Eventually(t, func() bool { return count(t, srv.JS, "RES") == 1 }, wait, 5*time.Millisecond)

	want, err := marshaler.Default().PublishMsg(ctx, "res.created", e, 0)
	require.NoError(t, err)
	got := stored(t, srv.JS, "RES")[0]
	assert.Equal(t, string(want.Data), string(got.Data))
	for k := range want.Header {
		assert.Equal(t, want.Header.Get(k), got.Header.Get(k), "header %s", k)
	}
	assert.Equal(t, "conversation-1", got.Header.Get("ce-correlationid"))
	assert.Equal(t, "cause-1", got.Header.Get("ce-causationid"))
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", got.Header.Get("traceparent"))
	assert.Equal(t, "vendor=value", got.Header.Get("tracestate"))
}

// TestPublish_refuses_what_could_not_be_published_inside_the_transaction:
// an event the relay could not send is refused at Publish, with the
// envelope's sentinel, and nothing is written.
func TestPublish_refuses_what_could_not_be_published_inside_the_transaction(t *testing.T) {
	d := sqliteDB(t)
	small, err := marshaler.New(marshaler.Config{MaxSize: 2048})
	require.NoError(t, err)
	o := newOutbox(t, d.db, outbox.Config{Marshaler: small})
	ctx := ctxT(t)
	big := event("big")
	big.Data = []byte(`"` + string(make([]byte, 0)) + stringOf('x', 4096) + `"`)
	noType := event("no-type")
	noType.Type = ""
	tests := []struct {
		name    string
		subject string
		e       *envelope.Event
		want    error
	}{
		{"wildcard subject", "res.*", event("a"), envelope.ErrInvalidSubject},
		{"empty subject", "", event("a"), envelope.ErrInvalidSubject},
		{"nil event", "res.created", nil, envelope.ErrInvalidEvent},
		{"invalid event", "res.created", noType, envelope.ErrInvalidEvent},
		{"too large for the marshaler", "res.created", big, envelope.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := d.db.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback() }()
			err = o.Publish(ctx, tx, tt.subject, tt.e)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	assert.ErrorIs(t, o.Publish(ctx, nil, "res.created", event("a")), outbox.ErrNoTransaction)
	assert.Zero(t, pending(t, o))
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// TestNew_refuses_bad_config: bad table names (spliced into SQL), unknown
// dialects and drivers it cannot detect are refused before anything runs.
func TestNew_refuses_bad_config(t *testing.T) {
	d := sqliteDB(t)
	for _, cfg := range []outbox.Config{
		{Table: "outbox; DROP TABLE users"},
		{Table: "a.b.c"},
		{Table: `"quoted"`},
		{Dialect: "mysql"},
	} {
		_, err := outbox.New(d.db, cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := outbox.New(nil, outbox.Config{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	o, err := outbox.New(d.db, outbox.Config{Table: "events.outbox_v2"})
	require.NoError(t, err, "schema-qualified names are fine")
	assert.Equal(t, "events.outbox_v2", o.Table())
	assert.Equal(t, outbox.SQLite, o.Dialect(), "detected from modernc.org/sqlite")
}

// TestRelay_refuses_bad_config_and_a_missing_schema.
func TestRelay_refuses_bad_config_and_a_missing_schema(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := sqliteDB(t)
	o, err := outbox.New(d.db, outbox.Config{})
	require.NoError(t, err)
	pub := publisher(t, srv)
	for _, cfg := range []outbox.RelayConfig{
		{BatchSize: -1},
		{Concurrency: -2},
		{PollMin: time.Second, PollMax: time.Millisecond},
		{LeaseTTL: 3 * time.Second, PublishTimeout: 2 * time.Second},
		{LeaseTTL: time.Minute, DuplicateWindow: 2 * time.Minute},
	} {
		_, err := outbox.NewRelay(o, pub, cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "%+v", cfg)
	}
	r := newRelay(t, o, pub, outbox.RelayConfig{})
	err = r.Run(ctxT(t))
	assert.ErrorIs(t, err, outbox.ErrNoSchema, "no CreateSchema yet")

	// SQLite without a busy timeout: the relay and the service's writers
	// would fail on each other's locks.
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/nobusy.db")
	require.NoError(t, err)
	defer db.Close()
	o2, err := outbox.New(db, outbox.Config{})
	require.NoError(t, err)
	_, err = outbox.NewRelay(o2, pub, outbox.RelayConfig{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "busy_timeout")
}

// TestRelay_run_twice_is_refused.
func TestRelay_run_twice_is_refused(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := sqliteDB(t)
	o := newOutbox(t, d.db, outbox.Config{})
	r := newRelay(t, o, publisher(t, srv), outbox.RelayConfig{})
	runRelay(t, r)
	require.Eventually(t, func() bool { return r.Health(ctxT(t)).Running }, wait, time.Millisecond)
	err := r.Run(context.Background())
	assert.True(t, errors.Is(err, outbox.ErrRelayRunning), "%v", err)
}
