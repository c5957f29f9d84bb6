package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	dlqlib "github.com/jetevents/events/dlq"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

const dlqUsage = `usage:
  jetevents dlq list   [-subject dlq.auth.>] [-n N] [-json]            dead letters, oldest first
  jetevents dlq show   SEQ [-json]                                      one dead letter in full
  jetevents dlq replay (SEQ | -all [-subject dlq.auth.>]) [-at TIME | -in DURATION] [-keep] [-original-msg-id] [-v]
  jetevents dlq purge  [-subject dlq.auth.>] [-yes]

Every subcommand takes -stream (default DLQ) and the connection flags
(-server, -context, -creds, ...; see 'jetevents -h').
-subject filters on the dead-letter subject: dlq.<original subject>, with
wildcards: dlq.auth.user.> (every user event), dlq.auth.user.created.`

// defaultDLQStream is the dead-letter stream scripts/streams.yaml declares
// (jetstream.DeadLetterStream).
const defaultDLQStream = "DLQ"

// dlqFlags are the flags every dlq subcommand takes.
type dlqFlags struct {
	conn            *connFlags
	stream, subject *string
}

func addDLQFlags(fs *flag.FlagSet) dlqFlags {
	return dlqFlags{
		conn:    addConnFlags(fs),
		stream:  fs.String("stream", defaultDLQStream, "dead-letter stream"),
		subject: fs.String("subject", "", "only dead letters on this subject: dlq.<original subject>, e.g. dlq.auth.user.> (default: all)"),
	}
}

// dlq is an open dead-letter stream: the library's Queue on the command's
// connection.
type dlq struct {
	*conn
	q      *dlqlib.Queue
	name   string
	filter string // the -subject filter, "" for all
}

// deadLetter is what dlq list -json and dlq show -json print per dead
// letter (package dlq's DeadLetter).
type deadLetter = dlqlib.DeadLetter

// openDLQ connects, looks the dead-letter stream up and checks -subject
// against its subjects: a filter it cannot hold (typically the original
// subject without the dlq. prefix) is refused with the subject that works.
func openDLQ(ctx context.Context, f dlqFlags, cmd string) (*dlq, context.Context, error) {
	if *f.subject != "" {
		if err := validateFilter(*f.subject); err != nil {
			return nil, nil, usageErr(cmd, "-subject %q: %v", *f.subject, err)
		}
	}
	c, ctx, err := f.conn.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.stream(ctx, *f.stream, "dead-letter stream", "-stream"); err != nil {
		c.Close()
		return nil, nil, err
	}
	q, err := dlqlib.Open(ctx, c.js, *f.stream)
	if err != nil {
		c.Close()
		return nil, nil, c.explain(ctx, err, "looking up dead-letter stream "+*f.stream)
	}
	var fe *dlqlib.FilterError
	if err := q.CheckFilter(*f.subject); errors.As(err, &fe) {
		c.Close()
		next := "dead letters are stored on dlq.<original subject>"
		if fe.Suggest != "" {
			next = "dead letters are stored on the original subject with its prefix: use -subject " + fe.Suggest
		}
		return nil, nil, opErr(fmt.Sprintf("%s holds no dead letters on %s (it stores %s)", fe.Stream, fe.Filter, strings.Join(fe.Subjects, ", ")), next, errUsage, err)
	}
	return &dlq{conn: c, q: q, name: *f.stream, filter: *f.subject}, ctx, nil
}

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

// get reads the dead letter at seq; a missing one is an opError saying
// what the stream holds.
func (d *dlq) get(ctx context.Context, seq uint64) (*natsjs.RawStreamMsg, error) {
	raw, err := d.q.Get(ctx, seq)
	if err == nil {
		return raw, nil
	}
	if !errors.Is(err, dlqlib.ErrNotFound) {
		return nil, d.explain(ctx, err, fmt.Sprintf("reading %s seq %d", d.name, seq))
	}
	holds := "no dead letters"
	if info, ierr := d.q.Info(ctx); ierr == nil && info.State.Msgs > 0 {
		holds = fmt.Sprintf("%s, sequences %d to %d", plural(int(info.State.Msgs), "dead letter", "dead letters"), info.State.FirstSeq, info.State.LastSeq)
	}
	return nil, opErr(fmt.Sprintf("%s has no dead letter with sequence %d (it holds %s; replayed and purged ones are gone)", d.name, seq, holds),
		"list them with 'jetevents dlq list'", errNotFound, err)
}

// replayer replays dead letters with package dlq (dlq.ReplayMessage says
// what a replay restores and why) and prints what it did.
type replayer struct {
	*dlq
	originalMsgID bool
	keep          bool
	// at, when set, replays later: at that time.
	at time.Time
	// verbose prints one line per dead letter in -all replays (a single
	// replay always does).
	verbose bool
	out     io.Writer
	// Counts of a replay -all, for its summary.
	replayed, duplicates int
}

// replay publishes the original of one dead letter, waits for the ack, then
// deletes the dead letter unless keep (dlq.Queue.Replay), and explains a
// failure to the operator.
func (r *replayer) replay(ctx context.Context, raw *natsjs.RawStreamMsg, single bool) error {
	rctx, cancel := r.reqCtx(ctx)
	res, err := r.q.Replay(rctx, raw, dlqlib.ReplayOptions{OriginalMsgID: r.originalMsgID, Keep: r.keep, At: r.at})
	cancel()
	if err != nil {
		return r.replayErr(ctx, raw, err)
	}
	note := ""
	if res.Duplicate {
		note = ", already replayed earlier (duplicate)"
		r.duplicates++
	}
	fate := "kept in " + r.name
	if res.Deleted {
		fate = "deleted from " + r.name
	}
	r.replayed++
	if single || r.verbose {
		if !r.at.IsZero() {
			fmt.Fprintf(r.out, "scheduled replay of %s seq %d -> %s at %s (schedule %s in stream %s seq %d, msg id %s%s); %s\n",
				r.name, raw.Sequence, res.Target, r.at.UTC().Format(time.RFC3339), res.Subject, res.Ack.Stream, res.Ack.Sequence, res.MsgID, note, fate)
			return nil
		}
		fmt.Fprintf(r.out, "replayed %s seq %d -> %s (stream %s seq %d, msg id %s%s); %s\n",
			r.name, raw.Sequence, res.Subject, res.Ack.Stream, res.Ack.Sequence, res.MsgID, note, fate)
	}
	return nil
}

// replayErr explains a failed replay (a *dlq.ReplayError): what happened
// and what to do next.
func (r *replayer) replayErr(ctx context.Context, raw *natsjs.RawStreamMsg, err error) error {
	var re *dlqlib.ReplayError
	if !errors.As(err, &re) {
		return r.explain(ctx, err, "replaying")
	}
	what := fmt.Sprintf("replay of %s seq %d to %s failed", r.name, raw.Sequence, re.Target)
	if re.Scheduled {
		what = "scheduled " + what
	}
	switch {
	case errors.Is(err, dlqlib.ErrNotDeadLetter):
		return opErr(oneLine(re.Cause.Error()), fmt.Sprintf("look at it with 'jetevents dlq show %d'; purge it if it does not belong in %s", raw.Sequence, r.name), errNotDeadLetter, err)
	case errors.Is(err, dlqlib.ErrDeduplicated):
		window := ""
		if re.Window > 0 {
			window = " (" + re.Window.String() + ")"
		}
		return opErr(fmt.Sprintf("%s seq %d to %s was dropped as a duplicate: stream %s already holds Nats-Msg-Id %q within its duplicates window%s, so nothing was stored and the dead letter is kept",
			r.name, raw.Sequence, re.Subject, re.TargetStream, re.MsgID, window),
			"replay without -original-msg-id, or after the window", errDeduplicated, err)
	case errors.Is(err, dlqlib.ErrDeleteFailed):
		return opErr(fmt.Sprintf("%s seq %d was replayed to %s seq %d, but deleting it from %s failed: %s", r.name, raw.Sequence, re.Ack.Stream, re.Ack.Sequence, r.name, oneLine(r.explain(ctx, re.Cause, "deleting it").Error())),
			"run the replay again: its replay id makes the stream store it once", err)
	case errors.Is(err, transport.ErrSchedulesDisabled):
		stream := "the stream of " + re.Target
		if re.TargetStream != "" {
			stream = "stream " + re.TargetStream
		}
		return opErr(fmt.Sprintf("%s: %s does not allow message schedules (the dead letter is kept)", what, stream),
			"set allow_msg_schedules: true on it in the spec file and 'jetevents streams apply -f FILE' (nats-server 2.12 or later), or replay now without -at/-in", transport.ErrSchedulesDisabled, err)
	case errors.Is(err, dlqlib.ErrNoTargetStream):
		return opErr(what+": no stream stores that subject any more (the dead letter is kept)",
			"create the stream again ('jetevents streams apply -f FILE')", errNotFound, err)
	case errors.Is(err, dlqlib.ErrStreamMoved):
		return opErr(fmt.Sprintf("%s: the subject is now stored by another stream than %s, where the consumer that gave up on it reads (the dead letter is kept)", what, re.TargetStream),
			"restore the original stream's subjects, or publish it by hand", err)
	}
	e := r.explain(ctx, re.Err, "replaying")
	return opErr(what+" (the dead letter is kept): "+e.Error(), "", err)
}

func dlqReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq replay", stderr)
	f := addDLQFlags(fs)
	seqFlag := fs.Uint64("seq", 0, "replay the dead letter with this sequence in the dead-letter stream (same as the SEQ argument)")
	all := fs.Bool("all", false, "replay every dead letter (on -subject when given)")
	keep := fs.Bool("keep", false, "keep the dead letters after replaying them")
	origID := fs.Bool("original-msg-id", false, "publish with the original Nats-Msg-Id; inside the target stream's duplicates window the replay is then de-duplicated and fails")
	verbose := fs.Bool("v", false, "with -all: print one line per dead letter replayed")
	atFlag := fs.String("at", "", "replay later, at this time (RFC 3339: 2024-01-15T09:00:00Z): the original stream holds it as a message schedule until then (it must allow schedules)")
	inFlag := fs.String("in", "", "replay later, after this duration (90s, 15m, 2h, 1d): as -at now+DURATION")
	every := fs.Int("progress", 100, "with -all: print progress to stderr every N dead letters (0: never)")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	seq := *seqFlag
	if len(pos) == 1 {
		if seq != 0 {
			return usageErr("dlq replay", "give the sequence once: SEQ or -seq N")
		}
		if seq, err = parseSeq(pos[0]); err != nil {
			return usageErr("dlq replay", "%v", err)
		}
	}
	switch {
	case *all && seq != 0:
		return usageErr("dlq replay", "SEQ and -all exclude each other")
	case !*all && seq == 0:
		return usageErr("dlq replay", "give the SEQ of a dead letter ('jetevents dlq list' shows them) or -all")
	case seq != 0 && *f.subject != "":
		return usageErr("dlq replay", "-subject goes with -all, not with a SEQ")
	case *every < 0:
		return usageErr("dlq replay", "-progress %d is negative", *every)
	case *atFlag != "" && *inFlag != "":
		return usageErr("dlq replay", "-at and -in exclude each other")
	}
	var at time.Time
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usageErr("dlq replay", "-at %q: want an RFC 3339 time such as 2024-01-15T09:00:00Z", *atFlag)
		}
	}
	if *inFlag != "" {
		d, err := jetstream.ParseDuration(*inFlag)
		if err != nil || d <= 0 {
			return usageErr("dlq replay", "-in %q: want a positive duration such as 90s, 15m, 2h or 1d", *inFlag)
		}
		at = time.Now().Add(d)
	}
	d, ctx, err := openDLQ(ctx, f, "dlq replay")
	if err != nil {
		return err
	}
	defer d.Close()
	r := &replayer{dlq: d, originalMsgID: *origID, keep: *keep, verbose: *verbose, out: stdout, at: at}

	if seq != 0 {
		raw, err := d.get(ctx, seq)
		if err != nil {
			return err
		}
		return r.replay(ctx, raw, true)
	}

	total, err := d.count(ctx, d.filter)
	if err != nil {
		return err
	}
	fate := "deleted from " + d.name
	if *keep {
		fate = "kept in " + d.name
	}
	summary := func(verb string) {
		dup := ""
		if r.duplicates > 0 {
			dup = fmt.Sprintf(" (%d already replayed earlier)", r.duplicates)
		}
		when := ""
		if !at.IsZero() {
			when = " for " + at.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s %d of %s from %s%s%s%s; %s\n", verb, r.replayed, plural(int(total), "dead letter", "dead letters"), d.name, subjectText(d.filter), when, dup, fate)
	}
	err = d.q.Scan(ctx, dlqlib.Filter{Subject: d.filter}, func(raw *natsjs.RawStreamMsg, _ deadLetter) (bool, error) {
		if err := r.replay(ctx, raw, false); err != nil {
			return false, err
		}
		if *every > 0 && r.replayed%*every == 0 && uint64(r.replayed) < total {
			fmt.Fprintf(stderr, "replayed %d of %d (%d%%)\n", r.replayed, total, uint64(r.replayed)*100/max(total, 1))
		}
		return true, nil
	})
	if err != nil {
		summary("stopped after replaying")
		var oe *opError
		if !errors.As(d.explain(ctx, err, "replaying"), &oe) {
			return err
		}
		next := "fix the cause"
		if oe.next != "" {
			next = oe.next
		}
		return opErr(oe.msg, next+"; then run the same command again (what was replayed is done)", oe.causes...)
	}
	summary("replayed")
	return nil
}

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
