package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	dlqlib "github.com/jetevents/events/dlq"
)

// dlqShow prints one dead letter in full: where it came from, why it died,
// every header, and the event a replay would publish.
func dlqShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq show", stderr)
	f := addDLQFlags(fs)
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("dlq show", "give the SEQ of the dead letter ('jetevents dlq list' shows them)")
	}
	seq, err := parseSeq(pos[0])
	if err != nil {
		return usageErr("dlq show", "%v", err)
	}
	if *f.subject != "" {
		return usageErr("dlq show", "-subject goes with dlq list, replay -all and purge, not with a SEQ")
	}
	d, ctx, err := openDLQ(ctx, f, "dlq show")
	if err != nil {
		return err
	}
	defer d.Close()
	raw, err := d.get(ctx, seq)
	if err != nil {
		return err
	}
	dl := dlqlib.Describe(nil, raw)
	dl.Headers = raw.Header
	if *asJSON {
		return json.NewEncoder(stdout).Encode(dl)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("dead letter", fmt.Sprintf("%s seq %d on %s, stored %s", d.name, dl.Seq, dl.Subject, dl.Stored.Format(time.RFC3339)))
	row("reason", dl.Reason)
	row("error", dl.Error)
	orig := dl.OriginalSubject
	if dl.Stream != "" {
		orig += fmt.Sprintf(" (stream %s seq %d)", dl.Stream, dl.StreamSeq)
	}
	row("original", orig)
	if dl.Consumer != "" {
		row("consumer", fmt.Sprintf("%s, %s", dl.Consumer, plural(dl.Deliveries, "delivery", "deliveries")))
	}
	row("handler", dl.Handler)
	row("dead-lettered at", dl.Time)
	row("msg id", dl.MsgID)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "headers:")
	keys := make([]string, 0, len(raw.Header))
	for k := range raw.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range raw.Header[k] {
			fmt.Fprintf(stdout, "  %s: %s\n", k, v)
		}
	}
	if dl.Event != nil {
		var pretty bytes.Buffer
		if json.Indent(&pretty, dl.Event, "  ", "  ") == nil {
			fmt.Fprintf(stdout, "event:\n  %s\n", pretty.String())
		}
	} else {
		fmt.Fprintf(stdout, "event: not decodable: %s\npayload (%s):\n  %s\n", dl.DecodeError, bytesText(uint64(len(raw.Data))), abbreviate(string(raw.Data), 400))
	}
	if dl.OriginalSubject != "" {
		fmt.Fprintf(stdout, "replay with: jetevents dlq replay %d\n", dl.Seq)
	}
	return nil
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%q is not a sequence number (1 or more)", s)
	}
	return seq, nil
}
