package main

import (
	"context"
	"database/sql"
	"flag"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/outbox"
)

var uiURL = regexp.MustCompile(`jetevents ui: (http://\S+/) `)

// startUI runs jetevents ui with args until the test ends and returns the
// URL it printed and its stderr.
func startUI(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"ui"}, args...), &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "jetevents ui returns nil when stopped")
		case <-time.After(10 * time.Second):
			t.Error("jetevents ui did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := uiURL.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], &stderr
		}
		select {
		case err := <-done:
			t.Fatalf("jetevents ui ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("jetevents ui printed no URL: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fetch(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestUI_serves_the_console_read_only_on_loopback_without_rendering_credentials:
// jetevents ui with the connection flags of a server that requires a user
// and password; every page answers, none holds the password, writes are
// refused (read-only without -writes) and other Host names are refused
// (DNS rebinding on loopback).
func TestUI_serves_the_console_read_only_on_loopback_without_rendering_credentials(t *testing.T) {
	const password = "ui-s3cret-pw-41d"
	natsURL := startNATS(t, server.Options{Username: "alice", Password: password})
	ctx := testCtx(t)
	mustRun(t, ctx, "streams", "apply", "-f", specFile, "-server", natsURL, "-user", "alice", "-password", password)

	base, _ := startUI(t, "-listen", "127.0.0.1:0", "-server", natsURL, "-user", "alice", "-password", password)
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), base)
	for _, page := range []string{"", "deadletters", "schedules", "groups/AUTH_EVENTS/user-notifications", "api/live"} {
		req, err := http.NewRequest(http.MethodGet, base+page, nil)
		require.NoError(t, err)
		status, body := fetch(t, req)
		assert.Equal(t, http.StatusOK, status, "page %q: %s", page, body)
		assert.NotContains(t, body, password, "page %q", page)
	}
	req, err := http.NewRequest(http.MethodPost, base+"deadletters/purge", strings.NewReader(url.Values{"confirm": {"yes"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body := fetch(t, req)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "read-only")

	req, err = http.NewRequest(http.MethodGet, base, nil)
	require.NoError(t, err)
	req.Host = "rebound.attacker.example"
	status, _ = fetch(t, req)
	assert.Equal(t, http.StatusForbidden, status)
}

func TestUI_listens_on_loopback_unless_told_otherwise(t *testing.T) {
	out, errOut, err := runCmd(t, testCtx(t), "ui", "-h")
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out, "it listens on loopback unless -listen names another")
	assert.Contains(t, errOut, `-listen string`)
	assert.Contains(t, errOut, `(default "127.0.0.1:8080")`)

	srv := newServer(t)
	base, stderr := startUI(t, "-listen", ":0", "-server", srv.URL, "-writes")
	assert.Contains(t, base, "http://localhost:")
	assert.Contains(t, stderr.String(), "not loopback: whoever reaches it reads the dead letters and can replay and purge them")
	req, err := http.NewRequest(http.MethodGet, base, nil)
	require.NoError(t, err)
	status, body := fetch(t, req)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "writes enabled")
}

// TestUI_shows_the_outbox_backlog_of_db: with -db, the overview shows the
// outbox table's pending rows (SQLite here; the same code reads PostgreSQL,
// as outbox status does).
func TestUI_shows_the_outbox_backlog_of_db(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	ob, err := outbox.New(db, outbox.Config{})
	require.NoError(t, err)
	require.NoError(t, ob.CreateSchema(ctx))
	for range 3 {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, ob.Publish(ctx, tx, "svc.resource.created", envelope.NewEvent("resource.created", "svc", "org", time.Now(), nil)))
		require.NoError(t, tx.Commit())
	}
	srv := newServer(t)
	base, _ := startUI(t, "-listen", "127.0.0.1:0", "-server", srv.URL, "-db", "sqlite:"+path)
	req, err := http.NewRequest(http.MethodGet, base, nil)
	require.NoError(t, err)
	status, body := fetch(t, req)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Outbox jetevents_outbox")
	assert.Contains(t, body, `data-live="outbox/jetevents_outbox/pending">3<`)

	_, _, err = runCmd(t, ctx, "ui", "-listen", "127.0.0.1:0", "-server", srv.URL, "-db", "sqlite:"+filepath.Join(t.TempDir(), "missing", "x.db"))
	require.ErrorIs(t, err, errOutbox)
}
