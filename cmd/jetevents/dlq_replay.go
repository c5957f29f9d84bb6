package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	dlqlib "github.com/jetevents/events/dlq"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

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
