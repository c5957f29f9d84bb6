package main

import (
	"bytes"
	"cmp"
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

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
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

// dlq is an open dead-letter stream.
type dlq struct {
	*conn
	st     natsjs.Stream
	name   string
	filter string // the -subject filter, "" for all
}

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
	st, err := c.stream(ctx, *f.stream, "dead-letter stream", "-stream")
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	subjects := st.CachedInfo().Config.Subjects
	if *f.subject != "" && len(subjects) > 0 && !holds(subjects, *f.subject) {
		c.Close()
		next := "dead letters are stored on dlq.<original subject>"
		if s := dlqSubjectFor(subjects, *f.subject); s != "" {
			next = "dead letters are stored on the original subject with its prefix: use -subject " + s
		}
		return nil, nil, opErr(fmt.Sprintf("%s holds no dead letters on %s (it stores %s)", *f.stream, *f.subject, strings.Join(subjects, ", ")), next, errUsage)
	}
	return &dlq{conn: c, st: st, name: *f.stream, filter: *f.subject}, ctx, nil
}

// dlqSubjectFor is filter under the prefix of a dead-letter stream subject
// ("dlq.>" and auth.user.created give dlq.auth.user.created), or "".
func dlqSubjectFor(subjects []string, filter string) string {
	for _, s := range subjects {
		if prefix, ok := strings.CutSuffix(s, ">"); ok && prefix != "" {
			if holds(subjects, prefix+filter) {
				return prefix + filter
			}
		}
	}
	return ""
}

// deadLetter is what dlq list -json and dlq show -json print per dead
// letter: one JSON object. Numbers are numbers.
type deadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream (what
	// replay and show take); Subject its subject there; Stored when it was
	// stored there.
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Stored  time.Time `json:"stored"`
	// The middleware's Dlq-* headers.
	OriginalSubject string `json:"original_subject,omitempty"`
	Stream          string `json:"stream,omitempty"`
	Consumer        string `json:"consumer,omitempty"`
	StreamSeq       uint64 `json:"stream_seq,omitempty"`
	Deliveries      int    `json:"deliveries,omitempty"`
	Handler         string `json:"handler,omitempty"`
	Reason          string `json:"reason,omitempty"`
	Error           string `json:"error,omitempty"`
	Time            string `json:"time,omitempty"`
	// MsgID is the original message's Nats-Msg-Id (the event id for events of
	// our publisher).
	MsgID string `json:"msg_id,omitempty"`
	// Headers are all the dead letter's headers (dlq show only).
	Headers map[string][]string `json:"headers,omitempty"`
	// Event is the decoded original event, or DecodeError why it is not one
	// (a dead letter with reason unmarshal usually has one).
	Event       json.RawMessage `json:"event,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

func describeDeadLetter(m *marshaler.Marshaler, raw *natsjs.RawStreamMsg) deadLetter {
	h := raw.Header
	dl := deadLetter{
		Seq: raw.Sequence, Subject: raw.Subject, Stored: raw.Time.UTC(),
		OriginalSubject: h.Get(middleware.HeaderSubject),
		Stream:          h.Get(middleware.HeaderStream),
		Consumer:        h.Get(middleware.HeaderConsumer),
		Handler:         h.Get(middleware.HeaderHandler),
		Reason:          h.Get(middleware.HeaderReason),
		Error:           h.Get(middleware.HeaderError),
		Time:            h.Get(middleware.HeaderTime),
		MsgID:           headerFold(h, middleware.HeaderOriginalPrefix+nats.MsgIdHdr),
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(middleware.HeaderStreamSeq), 10, 64)
	dl.Deliveries, _ = strconv.Atoi(h.Get(middleware.HeaderDeliveries))
	// Decode what a replay would publish: the original headers, not the
	// dead letter's.
	orig := originalHeader(h)
	if _, e, err := m.DecodeNATS(orig, raw.Data); err != nil {
		dl.DecodeError = err.Error()
	} else if b, err := e.MarshalJSON(); err != nil {
		dl.DecodeError = err.Error()
	} else {
		dl.Event = b
	}
	return dl
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
	m := marshaler.Default()
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	n := 0
	err = d.scan(ctx, d.filter, func(raw *natsjs.RawStreamMsg) (bool, error) {
		dl := describeDeadLetter(m, raw)
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
	dl := describeDeadLetter(marshaler.Default(), raw)
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
	raw, err := d.st.GetMsg(ctx, seq)
	if err == nil {
		return raw, nil
	}
	if !errors.Is(err, natsjs.ErrMsgNotFound) {
		return nil, d.explain(ctx, err, fmt.Sprintf("reading %s seq %d", d.name, seq))
	}
	holds := "no dead letters"
	if info, ierr := d.st.Info(ctx); ierr == nil && info.State.Msgs > 0 {
		holds = fmt.Sprintf("%s, sequences %d to %d", plural(int(info.State.Msgs), "dead letter", "dead letters"), info.State.FirstSeq, info.State.LastSeq)
	}
	return nil, opErr(fmt.Sprintf("%s has no dead letter with sequence %d (it holds %s; replayed and purged ones are gone)", d.name, seq, holds),
		"list them with 'jetevents dlq list'", errNotFound, err)
}

// scan calls fn for the messages of st on filter ("" for all), in sequence
// order, until fn returns false or an error. It stops at the last sequence
// the stream had when scan began, so that dead letters arriving meanwhile (a
// replayed event failing again) are not visited in the same pass. Reads use
// the message-get API ("first message >= seq on filter"): no consumer, no
// ack.
func (d *dlq) scan(ctx context.Context, filter string, fn func(*natsjs.RawStreamMsg) (bool, error)) error {
	st := d.st
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if filter == "" {
		filter = ">"
	}
	last := info.State.LastSeq
	for seq := max(info.State.FirstSeq, 1); seq <= last; {
		raw, err := st.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(filter))
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get message >= %d on %s: %w", seq, filter, err)
		}
		if raw.Sequence > last {
			return nil
		}
		more, err := fn(raw)
		if err != nil || !more {
			return err
		}
		seq = raw.Sequence + 1
	}
	return nil
}

// Replay.
//
// A replay publishes the original message again (payload and headers) on its
// original subject, waits for the stream's ack, then deletes the dead letter.
// The headers are those of the original message: the Dlq-* headers are
// dropped and the original Nats-* headers, which the middleware moved under
// Dlq-Original-, are restored where they still mean what they meant:
//
//   - Nats-Msg-Id (the event id) is NOT restored by default. The target
//     stream de-duplicates on it within its duplicates window (2m in
//     scripts/streams.yaml), counted from the original publish: a replay soon
//     after the dead-lettering would be acked as a duplicate and silently
//     not stored. A replay is a new publish, so it gets an id of its own,
//     "replay:<dlq stream>:<dlq seq>:<dlq stored time>": stable per dead
//     letter, so that re-running a replay that was stored but whose delete
//     failed stores it once. Consumers are not affected: the event id travels
//     in the payload and ce-id, and the idempotency middleware keys on it.
//     -original-msg-id restores the original id instead; a replay that the
//     stream then de-duplicates fails with errDeduplicated and keeps the dead
//     letter.
//   - Nats-TTL is restored (the message keeps its time to live).
//   - The other Nats-* headers are one-time instructions of the original
//     publish that would misfire now (Nats-Expected-Last-Sequence and the
//     other Nats-Expected-* checks against a stream that has moved on,
//     Nats-Rollup, which would purge the subject) or marks the server added
//     to the stored message: they are dropped.
//
// When the dead letter names its original stream (Dlq-Original-Stream), the
// publish expects that stream (Nats-Expected-Stream): a replay that another
// stream would capture fails instead of landing where the consumer that
// gave up on it does not read.
//
// -at TIME or -in DURATION replays later: the original message is stored as
// a message schedule of its stream (jetstream.At), which stores it on its
// subject at that time with the same payload and headers (so the event
// keeps its id), and the dead letter is deleted once the schedule is
// stored. The original stream must allow schedules (allow_msg_schedules);
// 'jetstream.Publisher.CancelSchedule(subject, event id)' cancels one.

// restoredHeaders are the original Nats-* headers a replay restores besides
// Nats-Msg-Id (see above for why the others are dropped).
var restoredHeaders = []string{"Nats-TTL"}

// originalHeader rebuilds the original message's headers from a dead
// letter's, without Nats-Msg-Id (the caller decides about it).
func originalHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, vs := range h {
		switch {
		case hasPrefixFold(k, middleware.HeaderOriginalPrefix+"Nats-"):
			orig := k[len(middleware.HeaderOriginalPrefix):]
			for _, r := range restoredHeaders {
				if strings.EqualFold(orig, r) {
					out[r] = slices.Clone(vs)
				}
			}
		case hasPrefixFold(k, "Dlq-"), hasPrefixFold(k, "Nats-"):
			// The dead letter's own headers: the middleware's, its own
			// Nats-Msg-Id, and those a direct get adds.
		default:
			out[k] = slices.Clone(vs)
		}
	}
	return out
}

// replayMsg is the message a replay of raw publishes, and the publish
// options: its msg id and expected stream. A replay at a later time (at not
// zero) is the schedule of that message.
func replayMsg(raw *natsjs.RawStreamMsg, dlqStream string, originalMsgID bool, at time.Time) (*nats.Msg, string, []natsjs.PublishOpt, error) {
	subject := raw.Header.Get(middleware.HeaderSubject)
	if subject == "" {
		return nil, "", nil, fmt.Errorf("%w: %s seq %d (%s) has no %s header", errNotDeadLetter, dlqStream, raw.Sequence, raw.Subject, middleware.HeaderSubject)
	}
	msg := &nats.Msg{Subject: subject, Header: originalHeader(raw.Header), Data: raw.Data}
	occurrenceOf(msg, raw.Header)
	id := fmt.Sprintf("replay:%s:%d:%d", dlqStream, raw.Sequence, raw.Time.UnixNano())
	if originalMsgID {
		id = headerFold(raw.Header, middleware.HeaderOriginalPrefix+nats.MsgIdHdr)
	}
	if !at.IsZero() {
		o, err := transport.ResolvePublishOptions([]transport.PublishOption{transport.At(at)})
		if err != nil {
			return nil, "", nil, err
		}
		// The schedule waits on a subject of its own per event: the event
		// id (ce-id), or the replay id for a message that is no event.
		eventID := msg.Header.Get(marshaler.HeaderID)
		if eventID == "" {
			eventID = fmt.Sprintf("replay-%s-%d", dlqStream, raw.Sequence)
		}
		o.Apply(msg, eventID, time.Now())
	}
	var opts []natsjs.PublishOpt
	if id != "" {
		opts = append(opts, natsjs.WithMsgID(id))
	}
	if s := raw.Header.Get(middleware.HeaderStream); s != "" {
		opts = append(opts, natsjs.WithExpectStream(s))
	}
	return msg, id, opts, nil
}

// occurrenceOf gives msg, the replay of a dead letter whose headers are h,
// the id of the occurrence it was when the dead letter is an occurrence of
// a recurring schedule: its Nats-Scheduler and Nats-Schedule-Next headers,
// from which the consumer derived that id (marshaler.OccurrenceID), cannot
// be published again (the server takes them from schedules only), so the
// replay carries the occurrence's id in its payload and ce-id instead.
// Without it, two replayed occurrences would share the schedule's event id,
// and an idempotent handler would run one of them only.
func occurrenceOf(msg *nats.Msg, h nats.Header) {
	orig := nats.Header{}
	for _, k := range []string{marshaler.HeaderScheduler, marshaler.HeaderScheduleNext} {
		if v := headerFold(h, middleware.HeaderOriginalPrefix+k); v != "" {
			orig.Set(k, v)
		}
	}
	next := orig.Get(marshaler.HeaderScheduleNext)
	if orig.Get(marshaler.HeaderScheduler) == "" || next == "" || next == transport.ScheduleNextPurge {
		return
	}
	e, err := envelope.Decode(msg.Data, len(msg.Data))
	if err != nil {
		return // not an envelope: nothing to re-identify
	}
	e.ID = marshaler.OccurrenceID(e.ID, next)
	msg.Data = e.AppendJSON(nil)
	if msg.Header.Get(marshaler.HeaderID) != "" {
		msg.Header.Set(marshaler.HeaderID, e.ID)
	}
}

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
// deletes the dead letter unless keep.
func (r *replayer) replay(ctx context.Context, raw *natsjs.RawStreamMsg, single bool) error {
	msg, id, opts, err := replayMsg(raw, r.name, r.originalMsgID, r.at)
	if err != nil {
		return opErr(err.Error(), fmt.Sprintf("look at it with 'jetevents dlq show %d'; purge it if it does not belong in %s", raw.Sequence, r.name), err)
	}
	rctx, cancel := r.reqCtx(ctx)
	ack, err := r.js.PublishMsg(rctx, msg, opts...)
	cancel()
	if err != nil {
		return r.replayErr(ctx, raw, msg, err)
	}
	note := ""
	if ack.Duplicate {
		if r.originalMsgID {
			return opErr(fmt.Sprintf("%s seq %d to %s was dropped as a duplicate: stream %s already holds Nats-Msg-Id %q within its duplicates window%s, so nothing was stored and the dead letter is kept",
				r.name, raw.Sequence, msg.Subject, ack.Stream, id, r.window(ctx, ack.Stream)),
				"replay without -original-msg-id, or after the window", errDeduplicated)
		}
		// Our own replay id: an earlier replay of this dead letter was
		// stored (and its delete failed, or -keep was given).
		note = ", already replayed earlier (duplicate)"
		r.duplicates++
	}
	fate := "kept in " + r.name
	if !r.keep {
		rctx, cancel := r.reqCtx(ctx)
		err := r.st.DeleteMsg(rctx, raw.Sequence)
		cancel()
		if err != nil && !errors.Is(err, natsjs.ErrMsgNotFound) {
			return opErr(fmt.Sprintf("%s seq %d was replayed to %s seq %d, but deleting it from %s failed: %s", r.name, raw.Sequence, ack.Stream, ack.Sequence, r.name, oneLine(r.explain(ctx, err, "deleting it").Error())),
				"run the replay again: its replay id makes the stream store it once", err)
		}
		fate = "deleted from " + r.name
	}
	r.replayed++
	if single || r.verbose {
		if !r.at.IsZero() {
			fmt.Fprintf(r.out, "scheduled replay of %s seq %d -> %s at %s (schedule %s in stream %s seq %d, msg id %s%s); %s\n",
				r.name, raw.Sequence, msg.Header.Get(transport.HeaderScheduleTarget), r.at.UTC().Format(time.RFC3339), msg.Subject, ack.Stream, ack.Sequence, id, note, fate)
			return nil
		}
		fmt.Fprintf(r.out, "replayed %s seq %d -> %s (stream %s seq %d, msg id %s%s); %s\n",
			r.name, raw.Sequence, msg.Subject, ack.Stream, ack.Sequence, id, note, fate)
	}
	return nil
}

// replayErr explains a failed replay publish; the dead letter is kept.
func (r *replayer) replayErr(ctx context.Context, raw *natsjs.RawStreamMsg, msg *nats.Msg, err error) error {
	what := fmt.Sprintf("replay of %s seq %d to %s failed", r.name, raw.Sequence, msg.Subject)
	var apiErr *natsjs.APIError
	if target := msg.Header.Get(transport.HeaderScheduleTarget); target != "" {
		what = fmt.Sprintf("scheduled replay of %s seq %d to %s failed", r.name, raw.Sequence, target)
		if errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeMessageSchedulesDisabled ||
			errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			stream := "the stream of " + target
			if name, lerr := r.js.StreamNameBySubject(ctx, target); lerr == nil {
				stream = "stream " + name
			} else if errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return opErr(what+": no stream stores that subject any more (the dead letter is kept)",
					"create the stream again ('jetevents streams apply -f FILE')", errNotFound, err)
			}
			return opErr(fmt.Sprintf("%s: %s does not allow message schedules (the dead letter is kept)", what, stream),
				"set allow_msg_schedules: true on it in the spec file and 'jetevents streams apply -f FILE' (nats-server 2.12 or later), or replay now without -at/-in", transport.ErrSchedulesDisabled, err)
		}
	}
	switch {
	case errors.Is(err, natsjs.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return opErr(what+": no stream stores that subject any more (the dead letter is kept)",
			"create the stream again ('jetevents streams apply -f FILE')", errNotFound, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamNotFound,
		errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "expected stream"):
		return opErr(fmt.Sprintf("%s: the subject is now stored by another stream than %s, where the consumer that gave up on it reads (the dead letter is kept)", what, raw.Header.Get(middleware.HeaderStream)),
			"restore the original stream's subjects, or publish it by hand", err)
	}
	e := r.explain(ctx, err, "replaying")
	return opErr(what+" (the dead letter is kept): "+e.Error(), "", err)
}

// window is " (2m0s)": the stream's duplicates window, for error messages;
// empty when the stream cannot be read.
func (r *replayer) window(ctx context.Context, stream string) string {
	st, err := r.js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	return " (" + st.CachedInfo().Config.Duplicates.String() + ")"
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
	err = d.scan(ctx, d.filter, func(raw *natsjs.RawStreamMsg) (bool, error) {
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
	info, err := d.st.Info(ctx, natsjs.WithSubjectFilter(cmp.Or(filter, ">")))
	if err != nil {
		return 0, d.explain(ctx, err, "counting the dead letters of "+d.name)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
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
	info, err := d.st.Info(ctx, natsjs.WithSubjectFilter(cmp.Or(d.filter, ">")))
	if err != nil {
		return d.explain(ctx, err, "counting the dead letters of "+d.name)
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	var total uint64
	for s, n := range info.State.Subjects {
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
		fmt.Fprintf(stdout, "  %-40s %d\n", s, info.State.Subjects[s])
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

// purge sends the stream purge request itself, because nats.go's
// Stream.Purge drops the server's count of purged messages, and the operator
// should see what was actually removed (dead letters may arrive between the
// listing and the purge).
func (d *dlq) purge(ctx context.Context, subject string) (uint64, error) {
	var body []byte
	if subject != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"filter": subject}); err != nil {
			return 0, err
		}
	}
	rctx, cancel := d.reqCtx(ctx)
	defer cancel()
	reply, err := d.nc.RequestWithContext(rctx, d.apiPrefix+"STREAM.PURGE."+d.name, body)
	if err != nil {
		return 0, d.explain(ctx, err, "purging "+d.name)
	}
	var resp struct {
		Success bool             `json:"success"`
		Purged  uint64           `json:"purged"`
		Error   *natsjs.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, opErr(fmt.Sprintf("the server's answer to the purge of %s is not JSON: %v", d.name, err), "check what 'jetevents dlq list' shows now", errServer, err)
	}
	if resp.Error != nil {
		return 0, d.explain(ctx, resp.Error, "purging "+d.name)
	}
	if !resp.Success {
		return 0, opErr("the server did not confirm the purge of "+d.name, "check what 'jetevents dlq list' shows now", errServer)
	}
	return resp.Purged, nil
}

func subjectText(subject string) string {
	if subject == "" {
		return ""
	}
	return " on " + subject
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// headerFold is h's first value of key, matched case-insensitively:
// nats.Header keeps the case a publisher used.
func headerFold(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
