package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

const dlqUsage = `usage:
  jetevents dlq list   [-stream DLQ] [-subject dlq.>] [-n N]
  jetevents dlq replay (-seq N | -all [-subject dlq.>]) [-keep] [-original-msg-id] [-stream DLQ]
  jetevents dlq purge  [-stream DLQ] [-subject dlq.>] [-yes]

Every subcommand also takes -server URL (default $NATS_URL, else nats://127.0.0.1:4222).
-subject filters on the dead-letter subject: dlq.<original subject>, wildcards allowed.`

// defaultDLQStream is the dead-letter stream scripts/streams.yaml declares
// (jetstream.DeadLetterStream).
const defaultDLQStream = "DLQ"

func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: dlq needs a subcommand\n%s", errUsage, dlqUsage)
	}
	switch args[0] {
	case "list", "ls":
		return dlqList(ctx, args[1:], stdout, stderr)
	case "replay":
		return dlqReplay(ctx, args[1:], stdout, stderr)
	case "purge":
		return dlqPurge(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, dlqUsage)
		return nil
	}
	return fmt.Errorf("%w: unknown dlq subcommand %q\n%s", errUsage, args[0], dlqUsage)
}

// dlqFlags are the flags every dlq subcommand takes.
type dlqFlags struct {
	server, stream, subject *string
}

func addDLQFlags(fs *flag.FlagSet) dlqFlags {
	return dlqFlags{
		server:  fs.String("server", defaultServer(), "NATS URL"),
		stream:  fs.String("stream", defaultDLQStream, "dead-letter stream"),
		subject: fs.String("subject", "", "only dead letters on this subject, e.g. dlq.auth.user.* (default: the whole stream)"),
	}
}

// openDLQ connects and looks the dead-letter stream up.
func openDLQ(ctx context.Context, f dlqFlags) (*nats.Conn, natsjs.JetStream, natsjs.Stream, error) {
	nc, js, err := connect(*f.server)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := js.Stream(ctx, *f.stream)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("dead-letter stream %s: %w", *f.stream, err)
	}
	return nc, js, st, nil
}

// deadLetter is what dlq list prints per dead letter: one JSON line.
type deadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream (what
	// replay -seq takes); Subject its subject there.
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// The middleware's Dlq-* headers.
	OriginalSubject string `json:"original_subject,omitempty"`
	Stream          string `json:"stream,omitempty"`
	Consumer        string `json:"consumer,omitempty"`
	StreamSeq       string `json:"stream_seq,omitempty"`
	Deliveries      string `json:"deliveries,omitempty"`
	Handler         string `json:"handler,omitempty"`
	Reason          string `json:"reason,omitempty"`
	Error           string `json:"error,omitempty"`
	Time            string `json:"time,omitempty"`
	// MsgID is the original message's Nats-Msg-Id (the event id for events of
	// our publisher).
	MsgID string `json:"msg_id,omitempty"`
	// Event is the decoded original event, or DecodeError why it is not one
	// (a dead letter with reason unmarshal usually has one).
	Event       json.RawMessage `json:"event,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

func describeDeadLetter(m *marshaler.Marshaler, raw *natsjs.RawStreamMsg) deadLetter {
	h := raw.Header
	dl := deadLetter{
		Seq: raw.Sequence, Subject: raw.Subject,
		OriginalSubject: h.Get(middleware.HeaderSubject),
		Stream:          h.Get(middleware.HeaderStream),
		Consumer:        h.Get(middleware.HeaderConsumer),
		StreamSeq:       h.Get(middleware.HeaderStreamSeq),
		Deliveries:      h.Get(middleware.HeaderDeliveries),
		Handler:         h.Get(middleware.HeaderHandler),
		Reason:          h.Get(middleware.HeaderReason),
		Error:           h.Get(middleware.HeaderError),
		Time:            h.Get(middleware.HeaderTime),
		MsgID:           headerFold(h, middleware.HeaderOriginalPrefix+nats.MsgIdHdr),
	}
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

// dlqList prints the dead letters, oldest first, one JSON line each. It reads
// with the stream's message-get API: no consumer is created and nothing is
// acked or changed.
func dlqList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq list", stderr)
	f := addDLQFlags(fs)
	limit := fs.Int("n", 0, "list at most n dead letters (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return fmt.Errorf("%w: dlq list: -n %d is negative", errUsage, *limit)
	}
	nc, _, st, err := openDLQ(ctx, f)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	defer nc.Close()
	m := marshaler.Default()
	enc := json.NewEncoder(stdout)
	n := 0
	err = scan(ctx, st, *f.subject, func(raw *natsjs.RawStreamMsg) (bool, error) {
		n++
		if err := enc.Encode(describeDeadLetter(m, raw)); err != nil {
			return false, err
		}
		return *limit == 0 || n < *limit, nil
	})
	if err != nil {
		return fmt.Errorf("dlq list %s: %w", *f.stream, err)
	}
	if n == 0 {
		fmt.Fprintf(stderr, "no dead letters in %s%s\n", *f.stream, subjectText(*f.subject))
	}
	return nil
}

// scan calls fn for the messages of st on filter ("" for all), in sequence
// order, until fn returns false or an error. It stops at the last sequence
// the stream had when scan began, so that dead letters arriving meanwhile (a
// replayed event failing again) are not visited in the same pass. Reads use
// the message-get API ("first message >= seq on filter"): no consumer, no
// ack.
func scan(ctx context.Context, st natsjs.Stream, filter string, fn func(*natsjs.RawStreamMsg) (bool, error)) error {
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
// options: its msg id and expected stream.
func replayMsg(raw *natsjs.RawStreamMsg, dlqStream string, originalMsgID bool) (*nats.Msg, string, []natsjs.PublishOpt, error) {
	subject := raw.Header.Get(middleware.HeaderSubject)
	if subject == "" {
		return nil, "", nil, fmt.Errorf("%w: %s seq %d (%s) has no %s header", errNotDeadLetter, dlqStream, raw.Sequence, raw.Subject, middleware.HeaderSubject)
	}
	msg := &nats.Msg{Subject: subject, Header: originalHeader(raw.Header), Data: raw.Data}
	id := fmt.Sprintf("replay:%s:%d:%d", dlqStream, raw.Sequence, raw.Time.UnixNano())
	if originalMsgID {
		id = headerFold(raw.Header, middleware.HeaderOriginalPrefix+nats.MsgIdHdr)
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

type replayer struct {
	js            natsjs.JetStream
	dlq           natsjs.Stream
	dlqStream     string
	originalMsgID bool
	keep          bool
	out           io.Writer
}

// replay publishes the original of one dead letter, waits for the ack, then
// deletes the dead letter unless keep.
func (r *replayer) replay(ctx context.Context, raw *natsjs.RawStreamMsg) error {
	msg, id, opts, err := replayMsg(raw, r.dlqStream, r.originalMsgID)
	if err != nil {
		return err
	}
	ack, err := r.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		if errors.Is(err, natsjs.ErrNoStreamResponse) {
			err = fmt.Errorf("no stream listens on %s (create it with jetevents streams apply): %w", msg.Subject, err)
		}
		return fmt.Errorf("replay %s seq %d to %s: %w (the dead letter is kept)", r.dlqStream, raw.Sequence, msg.Subject, err)
	}
	note := ""
	if ack.Duplicate {
		if r.originalMsgID {
			return fmt.Errorf("%w: %s seq %d to %s: stream %s already holds Nats-Msg-Id %q within its duplicates window%s, so nothing was stored and the dead letter is kept; replay without -original-msg-id, or after the window",
				errDeduplicated, r.dlqStream, raw.Sequence, msg.Subject, ack.Stream, id, r.window(ctx, ack.Stream))
		}
		// Our own replay id: an earlier replay of this dead letter was
		// stored (and its delete failed, or -keep was given).
		note = ", already replayed earlier (duplicate)"
	}
	fate := "kept in " + r.dlqStream
	if !r.keep {
		if err := r.dlq.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, natsjs.ErrMsgNotFound) {
			return fmt.Errorf("replay %s seq %d: replayed to %s seq %d, but delete from %s failed (a replay re-run is de-duplicated): %w",
				r.dlqStream, raw.Sequence, ack.Stream, ack.Sequence, r.dlqStream, err)
		}
		fate = "deleted from " + r.dlqStream
	}
	fmt.Fprintf(r.out, "replayed %s seq %d -> %s (stream %s seq %d, msg id %s%s); %s\n",
		r.dlqStream, raw.Sequence, msg.Subject, ack.Stream, ack.Sequence, id, note, fate)
	return nil
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
	seq := fs.Uint64("seq", 0, "replay the dead letter with this sequence in the dead-letter stream (see dlq list)")
	all := fs.Bool("all", false, "replay every dead letter (on -subject when given)")
	keep := fs.Bool("keep", false, "keep the dead letters after replaying them")
	origID := fs.Bool("original-msg-id", false, "publish with the original Nats-Msg-Id; inside the target stream's duplicates window the replay is then de-duplicated and fails")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *all && *seq != 0:
		return fmt.Errorf("%w: dlq replay: -seq and -all exclude each other", errUsage)
	case !*all && *seq == 0:
		return fmt.Errorf("%w: dlq replay: give -seq N or -all\n%s", errUsage, dlqUsage)
	case *seq != 0 && *f.subject != "":
		return fmt.Errorf("%w: dlq replay: -subject goes with -all, not -seq", errUsage)
	}
	nc, js, st, err := openDLQ(ctx, f)
	if err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	defer nc.Close()
	r := &replayer{js: js, dlq: st, dlqStream: *f.stream, originalMsgID: *origID, keep: *keep, out: stdout}

	if *seq != 0 {
		raw, err := st.GetMsg(ctx, *seq)
		if err != nil {
			return fmt.Errorf("dlq replay: %s seq %d: %w", *f.stream, *seq, err)
		}
		if err := r.replay(ctx, raw); err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		return nil
	}
	n := 0
	err = scan(ctx, st, *f.subject, func(raw *natsjs.RawStreamMsg) (bool, error) {
		if err := r.replay(ctx, raw); err != nil {
			return false, err
		}
		n++
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("dlq replay: stopped after %d replayed: %w", n, err)
	}
	fmt.Fprintf(stdout, "replayed %d dead letters from %s%s\n", n, *f.stream, subjectText(*f.subject))
	return nil
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
	nc, _, st, err := openDLQ(ctx, f)
	if err != nil {
		return fmt.Errorf("dlq purge: %w", err)
	}
	defer nc.Close()
	filter := cmp.Or(*f.subject, ">")
	info, err := st.Info(ctx, natsjs.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("dlq purge: %s: %w", *f.stream, err)
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	var total uint64
	for s, n := range info.State.Subjects {
		subjects = append(subjects, s)
		total += n
	}
	if total == 0 {
		fmt.Fprintf(stdout, "nothing to purge: no dead letters in %s%s\n", *f.stream, subjectText(*f.subject))
		return nil
	}
	slices.Sort(subjects)
	verb := "would purge"
	if *yes {
		verb = "purging"
	}
	fmt.Fprintf(stdout, "%s %d dead letters from %s%s:\n", verb, total, *f.stream, subjectText(*f.subject))
	for _, s := range subjects {
		fmt.Fprintf(stdout, "  %-40s %d\n", s, info.State.Subjects[s])
	}
	if !*yes {
		return fmt.Errorf("%w: dlq purge: nothing purged; rerun with -yes to purge these %d dead letters", errRefused, total)
	}
	purged, err := purge(ctx, nc, *f.stream, *f.subject)
	if err != nil {
		return fmt.Errorf("dlq purge %s: %w", *f.stream, err)
	}
	fmt.Fprintf(stdout, "purged %d dead letters from %s\n", purged, *f.stream)
	return nil
}

// purge sends the stream purge request itself, because nats.go's
// Stream.Purge drops the server's count of purged messages, and the operator
// should see what was actually removed (dead letters may arrive between the
// listing and the purge).
func purge(ctx context.Context, nc *nats.Conn, stream, subject string) (uint64, error) {
	var body []byte
	if subject != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"filter": subject}); err != nil {
			return 0, err
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	reply, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+stream, body)
	if err != nil {
		return 0, err
	}
	var resp struct {
		Success bool   `json:"success"`
		Purged  uint64 `json:"purged"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, fmt.Errorf("%w: purge reply: %w", errServer, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("%w: %s (code %d, err_code %d)", errServer, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	}
	if !resp.Success {
		return 0, fmt.Errorf("%w: purge not confirmed", errServer)
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
