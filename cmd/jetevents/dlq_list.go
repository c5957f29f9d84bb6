package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	dlqlib "github.com/jetevents/events/dlq"
)

// dlqList prints the dead letters, oldest first: a table, or one JSON line
// each with -json. It reads with the stream's message-get API: no consumer
// is created and nothing is acked or changed.
func dlqList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq list", stderr)
	f := addDLQFlags(fs)
	limit := fs.Int("n", 0, "list at most n dead letters (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per dead letter (headers and decoded event) instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return usageErr("dlq list", "-n %d is negative (0 means all)", *limit)
	}
	d, ctx, err := openDLQ(ctx, f, "dlq list")
	if err != nil {
		return err
	}
	defer d.Close()
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	n := 0
	err = d.q.Scan(ctx, dlqlib.Filter{Subject: d.filter}, func(_ *natsjs.RawStreamMsg, dl deadLetter) (bool, error) {
		if *asJSON {
			if err := enc.Encode(dl); err != nil {
				return false, err
			}
		} else {
			if n == 0 {
				fmt.Fprintln(tw, "SEQ\tSTORED\tREASON\tORIGINAL SUBJECT\tSTREAM SEQ\tDELIVERIES\tHANDLER\tERROR")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dl.Seq, dl.Stored.Format(time.RFC3339), dash(dl.Reason),
				dash(dl.OriginalSubject), dashNum(dl.StreamSeq), dashNum(uint64(dl.Deliveries)), dash(dl.Handler), dash(abbreviate(dl.Error, 60)))
		}
		n++
		return *limit == 0 || n < *limit, nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return d.explain(ctx, err, "reading "+d.name)
	}
	if n == 0 {
		fmt.Fprintf(stderr, "no dead letters in %s%s\n", d.name, subjectText(d.filter))
	} else if !*asJSON {
		fmt.Fprintf(stdout, "\n%s; 'jetevents dlq show SEQ' shows one in full, 'jetevents dlq replay SEQ' replays it\n", plural(n, "dead letter", "dead letters"))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashNum(n uint64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(n, 10)
}
