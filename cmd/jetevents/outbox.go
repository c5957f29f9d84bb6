package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx": PostgreSQL
	_ "modernc.org/sqlite"             // "sqlite": pure Go

	"github.com/jetevents/events/outbox"
)

const outboxUsage = `usage:
  jetevents outbox status -db URL [-table jetevents_outbox] [-max-age D] [-json]
                          rows waiting to be relayed: pending, oldest age, by subject; the SQLite lease

-db (default $DATABASE_URL): postgres://user:pass@host:5432/db?sslmode=disable, or
sqlite:PATH (also file:PATH, or a path ending in .db, .sqlite or .sqlite3; opened read-only).
It only reads.`

// errOutbox: the outbox table could not be read, or is older than -max-age.
var errOutbox = errors.New("outbox")

// outboxStatus prints what waits in an outbox table: what an operator looks
// at when events committed by a service do not reach the stream (no relay
// running, a subject held by a failing publish).
func outboxStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox status", stderr)
	dbURL := fs.String("db", os.Getenv("DATABASE_URL"), "the service's database: postgres://... or sqlite:PATH (default $DATABASE_URL)")
	table := fs.String("table", outbox.DefaultTable, "the outbox table (schema.table accepted)")
	maxAge := fs.Duration("max-age", 0, "fail (exit 1) when the oldest pending row is older than this: a check for cron or a probe")
	asJSON := fs.Bool("json", false, "one JSON object instead of a table")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on connecting and reading")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return usageErr("outbox status", "no database: pass -db URL or set $DATABASE_URL")
	}
	if *maxAge < 0 || *timeout <= 0 {
		return usageErr("outbox status", "-max-age and -timeout must be positive")
	}
	driver, dsn, shown, err := openArgs(*dbURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return opErr(fmt.Sprintf("cannot open %s: %v", shown, err), "check -db", errOutbox, err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return opErr(fmt.Sprintf("cannot reach the database %s: %v", shown, oneLine(err.Error())), "check -db (host, port, user, password; for SQLite the file's path)", errOutbox, err)
	}
	ob, err := outbox.New(db, outbox.Config{Table: *table})
	if err != nil {
		return usageErr("outbox status", "%v", err)
	}
	st, err := ob.Status(ctx)
	if errors.Is(err, outbox.ErrNoSchema) {
		return opErr(fmt.Sprintf("no table %s in %s", *table, shown), "name the service's outbox table with -table, or the service has not created it yet (Outbox.CreateSchema)", errOutbox, err)
	}
	if err != nil {
		return opErr(fmt.Sprintf("cannot read %s in %s: %v", *table, shown, oneLine(err.Error())), "check the user's rights on the table", errOutbox, err)
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(statusView(st)); err != nil {
			return err
		}
	} else {
		printStatus(stdout, st, shown, ob.Dialect())
	}
	if *maxAge > 0 && st.OldestAge > *maxAge {
		return opErr(fmt.Sprintf("the oldest row of %s waits for %s, above -max-age %s", *table, st.OldestAge.Round(time.Millisecond), *maxAge),
			"is a relay running (its Health, its logs)? a subject held by a failing publish shows in the relay's log and Health", errOutbox)
	}
	return nil
}

// openArgs maps a -db URL to a database/sql driver and DSN, and the URL to
// print (without its password).
func openArgs(raw string) (driver, dsn, shown string, err error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, perr := url.Parse(raw)
		if perr != nil {
			return "", "", "", usageErr("outbox status", "-db %q is not a URL: %v", raw, perr)
		}
		return "pgx", raw, u.Redacted(), nil
	case strings.HasPrefix(raw, "sqlite:"), strings.HasPrefix(raw, "file:"),
		strings.HasSuffix(raw, ".db"), strings.HasSuffix(raw, ".sqlite"), strings.HasSuffix(raw, ".sqlite3"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if _, serr := os.Stat(path); serr != nil {
			return "", "", "", opErr(fmt.Sprintf("no SQLite database at %s", path), "pass the service's database file with -db sqlite:PATH", errOutbox, serr)
		}
		return "sqlite", "file:" + path + "?mode=ro&_pragma=busy_timeout(5000)", "sqlite:" + path, nil
	}
	return "", "", "", usageErr("outbox status", "-db %q: want postgres://... or sqlite:PATH", raw)
}

type subjectView struct {
	Subject       string  `json:"subject"`
	Pending       int64   `json:"pending"`
	OldestSeconds float64 `json:"oldest_age_seconds"`
	NextRow       int64   `json:"next_row"`
	NextEventID   string  `json:"next_event_id"`
}

type leaseView struct {
	Owner            string  `json:"owner"`
	ExpiresInSeconds float64 `json:"expires_in_seconds"`
}

type statusJSON struct {
	Table         string        `json:"table"`
	Pending       int64         `json:"pending"`
	OldestSeconds float64       `json:"oldest_age_seconds"`
	Subjects      []subjectView `json:"subjects"`
	Lease         *leaseView    `json:"lease,omitempty"`
}

func statusView(st outbox.Status) statusJSON {
	v := statusJSON{Table: st.Table, Pending: st.Pending, OldestSeconds: st.OldestAge.Seconds(), Subjects: []subjectView{}}
	for _, s := range st.Subjects {
		v.Subjects = append(v.Subjects, subjectView{s.Subject, s.Pending, s.OldestAge.Seconds(), s.OldestID, s.OldestEventID})
	}
	if st.Lease != nil {
		v.Lease = &leaseView{st.Lease.Owner, st.Lease.ExpiresIn.Seconds()}
	}
	return v
}

func printStatus(w io.Writer, st outbox.Status, shown string, d outbox.Dialect) {
	fmt.Fprintf(w, "%s (%s, %s): %d pending", st.Table, d, shown, st.Pending)
	if st.Pending > 0 {
		fmt.Fprintf(w, ", oldest %s", st.OldestAge.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if len(st.Subjects) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBJECT\tPENDING\tOLDEST\tNEXT ROW\tNEXT EVENT")
		for _, s := range st.Subjects {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", s.Subject, s.Pending, s.OldestAge.Round(time.Millisecond), s.OldestID, s.OldestEventID)
		}
		_ = tw.Flush()
		if st.Pending > 0 && len(st.Subjects) == outbox.StatusSubjects {
			fmt.Fprintf(w, "(the %d subjects with the oldest rows)\n", outbox.StatusSubjects)
		}
	}
	if l := st.Lease; l != nil {
		if l.ExpiresIn > 0 {
			fmt.Fprintf(w, "relay lease: held by %s, expires in %s unless renewed\n", l.Owner, l.ExpiresIn.Round(time.Millisecond))
		} else {
			fmt.Fprintf(w, "relay lease: free (last held by %s, expired %s ago): no relay is running\n", l.Owner, (-l.ExpiresIn).Round(time.Millisecond))
		}
	}
}
