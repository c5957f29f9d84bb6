package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	dlqlib "github.com/jetevents/events/dlq"
)

// count is the number of dead letters on filter ("" for all).
func (d *dlq) count(ctx context.Context, filter string) (uint64, error) {
	n, err := d.q.Count(ctx, filter)
	if err != nil {
		return 0, d.explain(ctx, err, "counting the dead letters of "+d.name)
	}
	return n, nil
}

// dlqPurge removes dead letters. Without -yes it prints what it would
// remove (count per subject) and refuses.
func dlqPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq purge", stderr)
	f := addDLQFlags(fs)
	yes := fs.Bool("yes", false, "really purge (without it: print what would be purged, and refuse)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, ctx, err := openDLQ(ctx, f, "dlq purge")
	if err != nil {
		return err
	}
	defer d.Close()
	bySubject, err := d.q.CountBySubject(ctx, d.filter)
	if err != nil {
		return d.explain(ctx, err, "counting the dead letters of "+d.name)
	}
	subjects := make([]string, 0, len(bySubject))
	var total uint64
	for s, n := range bySubject {
		subjects = append(subjects, s)
		total += n
	}
	if total == 0 {
		fmt.Fprintf(stdout, "nothing to purge: no dead letters in %s%s\n", d.name, subjectText(d.filter))
		return nil
	}
	slices.Sort(subjects)
	verb := "would purge"
	if *yes {
		verb = "purging"
	}
	fmt.Fprintf(stdout, "%s %s from %s%s:\n", verb, plural(int(total), "dead letter", "dead letters"), d.name, subjectText(d.filter))
	for _, s := range subjects {
		fmt.Fprintf(stdout, "  %-40s %d\n", s, bySubject[s])
	}
	if !*yes {
		return opErr("nothing purged", fmt.Sprintf("rerun with -yes to purge the %s listed", plural(int(total), "dead letter", "dead letters")), errRefused)
	}
	purged, err := d.purge(ctx, d.filter)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "purged %s from %s\n", plural(int(purged), "dead letter", "dead letters"), d.name)
	return nil
}

// purge removes the dead letters on subject and returns how many the
// server removed (dead letters may arrive between the listing and the
// purge).
func (d *dlq) purge(ctx context.Context, subject string) (uint64, error) {
	rctx, cancel := d.reqCtx(ctx)
	defer cancel()
	n, err := d.q.Purge(rctx, subject)
	if errors.Is(err, dlqlib.ErrPurge) {
		return 0, opErr(oneLine(strings.TrimPrefix(err.Error(), "dlq: purge not confirmed: ")), "check what 'jetevents dlq list' shows now", errServer, err)
	}
	if err != nil {
		return 0, d.explain(ctx, err, "purging "+d.name)
	}
	return n, nil
}

func subjectText(subject string) string {
	if subject == "" {
		return ""
	}
	return " on " + subject
}
