package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

const streamsUsage = `usage:
  jetevents streams apply -f FILE   create or update what FILE declares (idempotent)
  jetevents streams list            streams with their message counts, and their consumers

Both take the connection flags (-server, -context, -creds, ...; see 'jetevents -h').`

// streamsApply loads a spec file and applies it. The file is read and
// validated before connecting, so a typo fails fast without a server. On a
// server error the changes made so far are printed before the error: the
// operator sees where it stopped.
func streamsApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("streams apply", stderr)
	cf := addConnFlags(fs)
	file := fs.String("f", "", "spec file (YAML or JSON), e.g. scripts/streams.yaml (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usageErr("streams apply", "-f FILE is required (e.g. -f scripts/streams.yaml)")
	}
	specs, err := jetstream.LoadSpecs(*file)
	if err != nil {
		return opErr(oneLine(err.Error()), "", err)
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// Every change is printed below (the operator's record of the apply),
	// so the library's warn lines would only repeat them on stderr.
	changes, err := jetstream.ApplyWithLogger(ctx, c.js, watermill.NopLogger{}, specs.All()...)
	for _, ch := range changes {
		fmt.Fprintln(stdout, ch.String())
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrApply) && !errors.Is(err, transport.ErrNoJetStream) && !errors.Is(err, natsjs.ErrConnectionClosed) && !isTimeout(err) && context.Cause(ctx) == nil {
			return opErr(oneLine(err.Error()), "", err)
		}
		return c.explain(ctx, err, "applying "+*file)
	}
	fmt.Fprintln(stdout, summary(changes))
	return nil
}

// summary reads like "3 specs: 1 created, 0 updated, 2 unchanged".
func summary(cs jetstream.Changes) string {
	n := map[jetstream.Action]int{}
	for _, c := range cs {
		n[c.Action]++
	}
	return fmt.Sprintf("%s: %d created, %d updated, %d unchanged",
		plural(len(cs), "spec", "specs"), n[jetstream.Created], n[jetstream.Updated], n[jetstream.Unchanged])
}

// plural is "1 spec", "2 specs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// streamsList prints two tables: the streams, then the consumers of all of
// them. It only reads (stream and consumer info); nothing is created.
func streamsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("streams list", stderr)
	cf := addConnFlags(fs)
	stalledAfter := fs.Duration("stalled-after", time.Minute, "flag a consumer as stalled when messages wait and nothing pulled for this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	streams, err := c.streams(ctx)
	if err != nil {
		return err
	}
	if len(streams) == 0 {
		fmt.Fprintln(stdout, "no streams (create them with: jetevents streams apply -f scripts/streams.yaml)")
		return nil
	}
	var consumers []*natsjs.ConsumerInfo
	count := make(map[string]int, len(streams))
	for _, si := range streams {
		mine, err := c.consumers(ctx, si.Config.Name)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return err
		}
		count[si.Config.Name] = len(mine)
		consumers = append(consumers, mine...)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSUBJECTS\tSTORAGE\tREPLICAS\tMESSAGES\tBYTES\tFIRST SEQ\tLAST SEQ\tCONSUMERS")
	for _, si := range streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\n",
			si.Config.Name, subjectsText(si.Config), strings.ToLower(si.Config.Storage.String()), si.Config.Replicas,
			si.State.Msgs, bytesText(si.State.Bytes), si.State.FirstSeq, si.State.LastSeq, count[si.Config.Name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if len(consumers) == 0 {
		fmt.Fprintln(stdout, "no consumers")
		return nil
	}
	return consumerTable(stdout, consumers, time.Now(), *stalledAfter)
}

// subjectsText is a stream's subjects, or where a mirror or sources copy
// from.
func subjectsText(cfg natsjs.StreamConfig) string {
	switch {
	case cfg.Mirror != nil:
		return "(mirror of " + cfg.Mirror.Name + ")"
	case len(cfg.Subjects) == 0 && len(cfg.Sources) > 0:
		names := make([]string, len(cfg.Sources))
		for i, s := range cfg.Sources {
			names[i] = s.Name
		}
		return "(sources " + strings.Join(names, ",") + ")"
	}
	return strings.Join(cfg.Subjects, ",")
}

// streams lists the streams, sorted by name.
func (c *conn) streams(ctx context.Context) ([]*natsjs.StreamInfo, error) {
	var out []*natsjs.StreamInfo
	lister := c.js.ListStreams(ctx)
	for si := range lister.Info() {
		out = append(out, si)
	}
	if err := lister.Err(); err != nil {
		return nil, c.explain(ctx, err, "listing streams")
	}
	slices.SortFunc(out, func(a, b *natsjs.StreamInfo) int { return cmp.Compare(a.Config.Name, b.Config.Name) })
	return out, nil
}

// consumers lists the consumers of a stream, sorted by name. A missing
// stream is natsjs.ErrStreamNotFound, unexplained (callers decide).
func (c *conn) consumers(ctx context.Context, stream string) ([]*natsjs.ConsumerInfo, error) {
	st, err := c.js.Stream(ctx, stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, c.explain(ctx, err, "looking up stream "+stream)
	}
	var out []*natsjs.ConsumerInfo
	cl := st.ListConsumers(ctx)
	for ci := range cl.Info() {
		out = append(out, ci)
	}
	if err := cl.Err(); err != nil {
		return nil, c.explain(ctx, err, "listing the consumers of "+stream)
	}
	slices.SortFunc(out, func(a, b *natsjs.ConsumerInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// stream looks a stream up. role names it in messages ("stream",
// "dead-letter stream"), pick says how the command is given another one
// ("-stream"); a missing one is an opError naming the streams the server
// has and how to get the one asked for.
func (c *conn) stream(ctx context.Context, name, role, pick string) (natsjs.Stream, error) {
	st, err := c.js.Stream(ctx, name)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, c.explain(ctx, err, "looking up "+role+" "+name)
	}
	have := "no streams"
	if names := c.streamNames(ctx); len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	next := "pick one with " + pick + ", or create it with 'jetevents streams apply -f FILE'"
	if role == "dead-letter stream" {
		next = "create it with 'jetevents streams apply -f scripts/streams.yaml' (which declares DLQ on dlq.>), or name yours with " + pick
	}
	return nil, opErr(fmt.Sprintf("%s %s does not exist (the server has %s)", role, name, have), next, errNotFound, err)
}

// streamNames is the names of the streams, or nil when they cannot be
// listed (the caller is already reporting an error).
func (c *conn) streamNames(ctx context.Context) []string {
	var names []string
	l := c.js.StreamNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		return nil
	}
	slices.Sort(names)
	return names
}

// streamsStoring is the streams whose subjects overlap filter.
func streamsStoring(streams []*natsjs.StreamInfo, filter string) []string {
	var out []string
	for _, si := range streams {
		for _, s := range si.Config.Subjects {
			if jetstream.SubjectsOverlap(filter, s) {
				out = append(out, si.Config.Name)
				break
			}
		}
	}
	return out
}

// holds reports whether a stream with these subjects can hold messages on
// filter.
func holds(subjects []string, filter string) bool {
	for _, s := range subjects {
		if jetstream.SubjectsOverlap(filter, s) {
			return true
		}
	}
	return false
}

// bytesText is n in binary units: "312 B", "1.5 KiB", "2.0 MiB".
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
