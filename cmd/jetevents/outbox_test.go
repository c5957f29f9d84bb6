package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/outbox"
)

// TestOutboxStatus_shows_what_waits_by_subject: on SQLite and PostgreSQL,
// the rows a service committed and no relay published yet: the total, the
// oldest's age, each subject's next row; -json; -max-age fails once the
// oldest row is older; a missing table and database are one line with
// what to do.
func TestOutboxStatus_shows_what_waits_by_subject(t *testing.T) {
	ctx := testCtx(t)
	litePath := filepath.Join(t.TempDir(), "svc.db")
	lite, err := sql.Open("sqlite", "file:"+litePath+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer lite.Close()
	require.NoError(t, lite.PingContext(ctx)) // creates the file
	pgDSN := eventstest.NewPostgres(t).DSN
	pg, err := sql.Open("pgx", pgDSN)
	require.NoError(t, err)
	defer pg.Close()

	for _, tt := range []struct {
		name, url string
		db        *sql.DB
	}{{"sqlite", "sqlite:" + litePath, lite}, {"postgres", pgDSN, pg}} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, "outbox", "status", "-db", tt.url)
			require.Error(t, err)
			assert.ErrorIs(t, err, errOutbox)
			assert.Contains(t, err.Error(), "no table jetevents_outbox")
			assert.Contains(t, err.Error(), "-table")

			ob, err := outbox.New(tt.db, outbox.Config{})
			require.NoError(t, err)
			require.NoError(t, ob.CreateSchema(ctx))
			out, _, err := runCmd(t, ctx, "outbox", "status", "-db", tt.url)
			require.NoError(t, err)
			assert.Contains(t, out, "jetevents_outbox ("+tt.name+", ")
			assert.Contains(t, out, ": 0 pending\n")

			for _, s := range []string{"svc.resource.created", "svc.resource.deleted", "svc.resource.created"} {
				tx, err := tt.db.BeginTx(ctx, nil)
				require.NoError(t, err)
				e := envelope.NewEvent("resource.x", "svc", "org", time.Now(), map[string]interface{}{"k": 1})
				require.NoError(t, ob.Publish(ctx, tx, s, e))
				require.NoError(t, tx.Commit())
			}
			out, _, err = runCmd(t, ctx, "outbox", "status", "-db", tt.url)
			require.NoError(t, err)
			assert.Contains(t, out, ": 3 pending, oldest ")
			assert.Regexp(t, `(?m)^SUBJECT\s+PENDING\s+OLDEST\s+NEXT ROW\s+NEXT EVENT$`, out)
			assert.Regexp(t, `(?m)^svc\.resource\.created\s+2\s+\S+\s+1\s+[0-9a-f-]{36}$`, out)
			assert.Regexp(t, `(?m)^svc\.resource\.deleted\s+1\s+\S+\s+2\s+`, out)

			out, _, err = runCmd(t, ctx, "outbox", "status", "-db", tt.url, "-json")
			require.NoError(t, err)
			var v statusJSON
			require.NoError(t, json.Unmarshal([]byte(out), &v))
			assert.EqualValues(t, 3, v.Pending)
			require.Len(t, v.Subjects, 2)
			assert.Equal(t, "svc.resource.created", v.Subjects[0].Subject)

			_, _, err = runCmd(t, ctx, "outbox", "status", "-db", tt.url, "-max-age", "1h")
			assert.NoError(t, err, "younger than an hour")
			_, _, err = runCmd(t, ctx, "outbox", "status", "-db", tt.url, "-max-age", "1ns")
			require.Error(t, err)
			assert.True(t, errors.Is(err, errOutbox))
			assert.Contains(t, err.Error(), "is a relay running")
		})
	}

	_, _, err = runCmd(t, ctx, "outbox", "status", "-db", "sqlite:"+filepath.Join(t.TempDir(), "missing.db"))
	assert.ErrorIs(t, err, errOutbox)
	_, _, err = runCmd(t, ctx, "outbox", "status", "-db", "mysql://x")
	assert.ErrorIs(t, err, errUsage)
	_, _, err = runCmd(t, ctx, "outbox", "status")
	assert.ErrorIs(t, err, errUsage)
	_, _, err = runCmd(t, ctx, "outbox", "status", "-db", "postgres://nobody:secret@127.0.0.1:1/x", "-timeout", "2s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the database")
	assert.NotContains(t, err.Error(), "secret", "no password in messages")
}
