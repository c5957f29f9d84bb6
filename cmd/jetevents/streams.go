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

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
)

const streamsUsage = `usage:
  jetevents streams apply -f FILE [-server URL]   create or update what FILE declares (idempotent)
  jetevents streams list [-server URL]            streams with their message counts, and their consumers`

func cmdStreams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: streams needs a subcommand\n%s", errUsage, streamsUsage)
	}
	switch args[0] {
	case "apply":
		return streamsApply(ctx, args[1:], stdout, stderr)
	case "list", "ls":
		return streamsList(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, streamsUsage)
		return nil
	}
	return fmt.Errorf("%w: unknown streams subcommand %q\n%s", errUsage, args[0], streamsUsage)
}

// streamsApply loads a spec file and applies it. The file is read and
// validated before connecting, so a typo fails fast without a server. On a
// server error the changes made so far are printed before the error: the
// operator sees where it stopped.
func streamsApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("streams apply", stderr)
	server := fs.String("server", defaultServer(), "NATS URL")
	file := fs.String("f", "", "spec file (YAML or JSON), e.g. scripts/streams.yaml (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: streams apply: -f FILE is required", errUsage)
	}
	specs, err := jetstream.LoadSpecs(*file)
	if err != nil {
		return fmt.Errorf("streams apply: %w", err)
	}
	nc, js, err := connect(*server)
	if err != nil {
		return err
	}
	defer nc.Close()
	changes, err := jetstream.Apply(ctx, js, specs.All()...)
	for _, c := range changes {
		fmt.Fprintln(stdout, c.String())
	}
	if err != nil {
		return fmt.Errorf("streams apply %s: %w", *file, err)
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
	return fmt.Sprintf("%d specs: %d created, %d updated, %d unchanged",
		len(cs), n[jetstream.Created], n[jetstream.Updated], n[jetstream.Unchanged])
}

// streamsList prints two tables: the streams, then the consumers of all of
// them. It only reads (stream and consumer info); nothing is created.
func streamsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("streams list", stderr)
	server := fs.String("server", defaultServer(), "NATS URL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nc, js, err := connect(*server)
	if err != nil {
		return err
	}
	defer nc.Close()

	var streams []*natsjs.StreamInfo
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		streams = append(streams, si)
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("streams list: %w", err)
	}
	if len(streams) == 0 {
		fmt.Fprintln(stdout, "no streams (create them with: jetevents streams apply -f scripts/streams.yaml)")
		return nil
	}
	slices.SortFunc(streams, func(a, b *natsjs.StreamInfo) int { return cmp.Compare(a.Config.Name, b.Config.Name) })

	var consumers []*natsjs.ConsumerInfo
	count := make(map[string]int, len(streams))
	for _, si := range streams {
		st, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			if errors.Is(err, natsjs.ErrStreamNotFound) {
				continue // deleted since it was listed
			}
			return fmt.Errorf("streams list: stream %s: %w", si.Config.Name, err)
		}
		cl := st.ListConsumers(ctx)
		var mine []*natsjs.ConsumerInfo
		for ci := range cl.Info() {
			mine = append(mine, ci)
		}
		if err := cl.Err(); err != nil {
			return fmt.Errorf("streams list: consumers of %s: %w", si.Config.Name, err)
		}
		slices.SortFunc(mine, func(a, b *natsjs.ConsumerInfo) int { return cmp.Compare(a.Name, b.Name) })
		count[si.Config.Name] = len(mine)
		consumers = append(consumers, mine...)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSUBJECTS\tSTORAGE\tREPLICAS\tMESSAGES\tBYTES\tFIRST SEQ\tLAST SEQ\tCONSUMERS")
	for _, si := range streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\n",
			si.Config.Name, strings.Join(si.Config.Subjects, ","), strings.ToLower(si.Config.Storage.String()), si.Config.Replicas,
			si.State.Msgs, bytesText(si.State.Bytes), si.State.FirstSeq, si.State.LastSeq, count[si.Config.Name])
	}
	fmt.Fprintln(tw)
	if len(consumers) == 0 {
		fmt.Fprintln(tw, "no consumers")
		return tw.Flush()
	}
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tFILTER\tPENDING\tACK PENDING\tREDELIVERED\tWAITING\tMAX DELIVER")
	for _, ci := range consumers {
		name := ci.Name
		if ci.Config.Durable == "" {
			// Ordered consumers of `jetevents tail` and the like.
			name += " (ephemeral)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n",
			ci.Stream, name, filterText(ci.Config), ci.NumPending, ci.NumAckPending,
			ci.NumRedelivered, ci.NumWaiting, maxDeliverText(ci.Config.MaxDeliver))
	}
	return tw.Flush()
}

func filterText(c natsjs.ConsumerConfig) string {
	f := c.FilterSubjects
	if c.FilterSubject != "" {
		f = append([]string{c.FilterSubject}, f...)
	}
	if len(f) == 0 {
		return "(all)"
	}
	return strings.Join(f, ",")
}

func maxDeliverText(n int) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
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
