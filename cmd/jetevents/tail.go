package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	dlqlib "github.com/jetevents/events/dlq"
	"github.com/jetevents/events/marshaler"
)

// tailInactiveThreshold is how long the server keeps tail's consumer after
// its client vanished without deleting it (killed, network gone). tail
// deletes it itself on every ordinary exit.
const tailInactiveThreshold = 30 * time.Second

// tailPullWait bounds one pull request of tail.
const tailPullWait = 10 * time.Second

// cmdTail prints the events of a stream as they arrive, one JSON line each,
// through an ephemeral consumer of its own (in memory, no acks): it never
// creates a durable and so never disturbs the consumers doing the real
// work. The consumer is deleted when tail exits. A plain pull consumer
// rather than nats.go's ordered one, whose Next recreates the server-side
// consumer at every call and deletes the old one in the background.
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", stderr)
	cf := addConnFlags(fs)
	stream := fs.String("stream", "", "stream to read (default: the stream that stores -subject, else AUTH_EVENTS)")
	subject := fs.String("subject", "", "only events on this subject; wildcards allowed, e.g. auth.user.> (default: the whole stream)")
	all := fs.Bool("all", false, "start from the first message instead of new ones")
	limit := fs.Int("n", 0, "stop after n events (0: until interrupted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return usageErr("tail", "-n %d is negative (0 means until interrupted)", *limit)
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	name, st, err := c.tailStream(ctx, *stream, *subject)
	if interrupted(ctx) {
		return nil // stopped before it started: nothing went wrong
	}
	if err != nil {
		return err
	}
	cfg := natsjs.ConsumerConfig{
		Description:       "jetevents tail (deleted when it exits)",
		DeliverPolicy:     natsjs.DeliverNewPolicy,
		AckPolicy:         natsjs.AckNonePolicy,
		InactiveThreshold: tailInactiveThreshold,
		MemoryStorage:     true,
		Replicas:          1,
	}
	from := "new events"
	if *all {
		cfg.DeliverPolicy = natsjs.DeliverAllPolicy
		from = "all events"
	}
	if *subject != "" {
		cfg.FilterSubjects = []string{*subject}
	}
	rctx, cancel := c.reqCtx(ctx)
	cons, err := c.js.CreateConsumer(rctx, name, cfg)
	cancel()
	if interrupted(ctx) {
		if err == nil {
			c.deleteConsumer(name, cons.CachedInfo().Name)
		}
		return nil
	}
	if err != nil {
		return c.explain(ctx, err, "creating tail's consumer on "+name)
	}
	defer c.deleteConsumer(name, cons.CachedInfo().Name)

	filter := strings.Join(st.Subjects, ",")
	if *subject != "" {
		filter = *subject
	}
	stop := "Ctrl-C to stop"
	if *limit > 0 {
		stop = fmt.Sprintf("stopping after %d", *limit)
	}
	fmt.Fprintf(stderr, "tailing %s of %s on %s (%s)\n", from, name, filter, stop)

	m := marshaler.Default()
	enc := json.NewEncoder(stdout)
	for n := 0; *limit == 0 || n < *limit; {
		batch := 256
		if *limit > 0 {
			batch = min(batch, *limit-n)
		}
		// A pull that waits at most tailPullWait, so that a consumer the
		// server lost (a restart) is noticed.
		fctx, cancel := context.WithTimeout(ctx, tailPullWait)
		msgs, err := cons.Fetch(batch, natsjs.FetchContext(fctx))
		if err == nil {
			for msg := range msgs.Messages() {
				if err := enc.Encode(describe(m, msg)); err != nil {
					cancel()
					return err
				}
				n++
			}
			err = msgs.Error()
		}
		cancel()
		switch {
		case interrupted(ctx):
			return nil // Ctrl-C, SIGTERM: how tail is meant to end
		case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			continue // nothing new yet
		case errors.Is(err, natsjs.ErrConsumerDeleted), errors.Is(err, natsjs.ErrConsumerNotFound), errors.Is(err, natsjs.ErrNoHeartbeat):
			return opErr(fmt.Sprintf("tail's consumer on %s is gone (the server restarted, or someone deleted it)", name), "run tail again", err)
		default:
			return c.explain(ctx, err, "reading "+name)
		}
	}
	return nil
}

// interrupted reports whether ctx ended because the command was told to stop
// (main's signal context: SIGINT or SIGTERM, whose cause, since Go 1.26,
// names the signal and matches context.Canceled), not because of a failure
// recorded as the cause (a permission violation, see conn.asyncError).
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled)
}

// tailStream picks the stream to read and checks that it can hold subject:
// tail on a subject its stream does not store would wait forever.
func (c *conn) tailStream(ctx context.Context, stream, subject string) (string, natsjs.StreamConfig, error) {
	if subject != "" {
		if err := validateFilter(subject); err != nil {
			return "", natsjs.StreamConfig{}, usageErr("tail", "-subject %q: %v", subject, err)
		}
	}
	if stream == "" && subject != "" {
		streams, err := c.streams(ctx)
		if err != nil {
			return "", natsjs.StreamConfig{}, err
		}
		switch holders := streamsStoring(streams, subject); len(holders) {
		case 0:
			return "", natsjs.StreamConfig{}, opErr(fmt.Sprintf("no stream stores %s (the server has %s)", subject, namesOrNone(streams)),
				"check the subject ('jetevents streams list' shows what each stream stores)", errNotFound)
		case 1:
			stream = holders[0]
		default:
			return "", natsjs.StreamConfig{}, opErr(fmt.Sprintf("%s is stored by several streams: %s", subject, strings.Join(holders, ", ")),
				"pick one with -stream", errUsage)
		}
	}
	if stream == "" {
		stream = "AUTH_EVENTS"
	}
	st, err := c.stream(ctx, stream, "stream", "-stream")
	if err != nil {
		return "", natsjs.StreamConfig{}, err
	}
	cfg := st.CachedInfo().Config
	if subject != "" && len(cfg.Subjects) > 0 && !holds(cfg.Subjects, subject) {
		next := "pick the stream that stores it with -stream ('jetevents streams list' shows what each stream stores)"
		if streams, err := c.streams(ctx); err == nil {
			if holders := streamsStoring(streams, subject); len(holders) > 0 {
				next = "use -stream " + holders[0]
				if len(holders) > 1 {
					next = "use -stream with one of " + strings.Join(holders, ", ")
				}
			}
		}
		return "", natsjs.StreamConfig{}, opErr(fmt.Sprintf("stream %s does not store %s (it stores %s), so tail would wait forever", stream, subject, strings.Join(cfg.Subjects, ", ")),
			next, errUsage)
	}
	return stream, cfg, nil
}

func namesOrNone(streams []*natsjs.StreamInfo) string {
	if len(streams) == 0 {
		return "no streams"
	}
	var b strings.Builder
	for i, si := range streams {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s on %s", si.Config.Name, subjectsText(si.Config))
	}
	return b.String()
}

// validateFilter checks a subject filter (dlq.ValidateFilter) and says
// what is wrong with it: "empty token", "'>' must be the last token".
func validateFilter(s string) error {
	var se *dlqlib.SyntaxError
	if err := dlqlib.ValidateFilter(s); errors.As(err, &se) {
		return errors.New(se.Why)
	} else if err != nil {
		return err
	}
	return nil
}

// deleteConsumer removes tail's consumer, so that none is left behind (the
// server would keep it for its inactive threshold). It runs after ctx may
// have ended, so it has a context of its own.
func (c *conn) deleteConsumer(stream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_ = c.js.DeleteConsumer(ctx, stream, name) // best effort: the inactive threshold is the fallback
}

// line is what tail prints per message.
type line struct {
	Subject  string          `json:"subject"`
	Sequence uint64          `json:"seq"`
	Event    json.RawMessage `json:"event,omitempty"`
	Error    string          `json:"decode_error,omitempty"`
}

func describe(m *marshaler.Marshaler, msg natsjs.Msg) line {
	l := line{Subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		l.Sequence = md.Sequence.Stream
	}
	if _, e, err := m.DecodeNATS(msg.Headers(), msg.Data()); err != nil {
		l.Error = err.Error()
	} else if b, err := e.MarshalJSON(); err == nil {
		l.Event = b
	}
	return l
}
