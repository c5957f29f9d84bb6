package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	natsjs "github.com/nats-io/nats.go/jetstream"

	dlqlib "github.com/jetevents/events/dlq"
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
