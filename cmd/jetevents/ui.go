package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/user"
	"strings"
	"time"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/outbox"
)

const uiUsage = `usage: jetevents ui [-listen 127.0.0.1:8080] [-writes] [-stream DLQ] [-db URL [-table T]] [connection flags]

Serves the web console (package console): groups and their lag, dead letters
with search, replay and purge, pending schedules, the outbox backlog with -db.
Read-only unless -writes; it listens on loopback unless -listen names another
address (the console has no login of its own: put it behind one there).`

// cmdUI serves the console until ctx ends (Ctrl-C, SIGTERM).
func cmdUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ui", stderr)
	cf := addConnFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on; loopback unless you give another (the console has no login of its own)")
	writes := fs.Bool("writes", false, "allow replay, purge, schedule cancel and pause/resume (each logged on stderr with the local user)")
	stream := fs.String("stream", defaultDLQStream, "dead-letter stream")
	dbURL := fs.String("db", "", "a service's database, to show its outbox backlog: postgres://... or sqlite:PATH")
	table := fs.String("table", outbox.DefaultTable, "the outbox table, with -db")
	refresh := fs.Duration("refresh", console.DefaultRefresh, "how often the pages' live numbers refresh")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageErr("ui", "-listen %q: want HOST:PORT, e.g. 127.0.0.1:8080", *listen)
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	who := "local user"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	cfg := console.Config{
		JetStream: c.js, DeadLetterStream: *stream, AllowWrites: *writes, Logger: logger, Refresh: *refresh,
		RequestTimeout: max(2*c.timeout, 10*time.Second),
		Identity: func(r *http.Request) string {
			return who + " (jetevents ui, from " + r.RemoteAddr + ")"
		},
	}
	loopback := isLoopback(host)
	if loopback {
		// No login on loopback: refuse other Host names, so that a web page
		// cannot read the console through DNS rebinding.
		cfg.AllowedHosts = []string{"127.0.0.1", "localhost", "::1", host}
	}
	if *dbURL != "" {
		ob, closeDB, err := openOutbox(ctx, *dbURL, *table)
		if err != nil {
			return err
		}
		defer closeDB()
		cfg.Outbox = []console.OutboxBacklog{ob.Backlog}
	}
	h, err := console.New(cfg)
	if err != nil {
		return usageErr("ui", "%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return opErr(fmt.Sprintf("cannot listen on %s: %v", *listen, oneLine(err.Error())), "pick another -listen address (is another jetevents ui running?)", err)
	}
	mode := "read-only; -writes to replay, purge, cancel and pause"
	if *writes {
		mode = "writes enabled, each logged here with the local user"
	}
	shown := ln.Addr().String()
	if host == "" || host == "0.0.0.0" || host == "::" {
		_, port, _ := net.SplitHostPort(shown)
		shown = net.JoinHostPort("localhost", port)
	}
	fmt.Fprintf(stdout, "jetevents ui: http://%s/ (%s; server %s); Ctrl-C stops it\n", shown, mode, c.url)
	if !loopback {
		fmt.Fprintf(stderr, "jetevents ui: warning: listening on %s, not loopback: whoever reaches it reads the dead letters%s; the console has no login of its own: put it behind one\n",
			ln.Addr(), map[bool]string{true: " and can replay and purge them", false: ""}[*writes])
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return opErr("the console stopped: "+oneLine(err.Error()), "", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// isLoopback reports whether a listen host is a loopback address or name.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// openOutbox opens a service's outbox table read-only, for its backlog.
func openOutbox(ctx context.Context, raw, table string) (*outbox.Outbox, func(), error) {
	driver, dsn, shown, err := openArgs(raw)
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, opErr(fmt.Sprintf("cannot open %s: %v", shown, err), "check -db", errOutbox, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, nil, opErr(fmt.Sprintf("cannot reach the database %s: %v", shown, oneLine(err.Error())), "check -db (host, port, user, password; for SQLite the file's path)", errOutbox, err)
	}
	ob, err := outbox.New(db, outbox.Config{Table: table})
	if err != nil {
		db.Close()
		return nil, nil, usageErr("ui", "%v", err)
	}
	return ob, func() { db.Close() }, nil
}
