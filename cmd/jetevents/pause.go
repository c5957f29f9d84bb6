package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

// consumersPause pauses a group's durable with JetStream's consumer pause
// (nats-server 2.11 or later): nothing is delivered to it, by any process,
// until -until (or now + -for); the server then resumes it by itself.
func consumersPause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("consumers pause", stderr)
	cf := addConnFlags(fs)
	stream := fs.String("stream", "", "the stream of the consumer (default: the one stream that has a consumer of that name)")
	untilFlag := fs.String("until", "", "pause until this time (RFC 3339: 2024-01-15T09:00:00Z)")
	forFlag := fs.String("for", "", "pause for this long (90s, 15m, 2h, 1d): as -until now+DURATION")
	group, err := groupArg(fs, "consumers pause", args)
	if err != nil {
		return err
	}
	var until time.Time
	switch {
	case *untilFlag == "" && *forFlag == "":
		return usageErr("consumers pause", "say until when: -until TIME or -for DURATION")
	case *untilFlag != "" && *forFlag != "":
		return usageErr("consumers pause", "-until and -for exclude each other")
	case *untilFlag != "":
		if until, err = time.Parse(time.RFC3339, *untilFlag); err != nil {
			return usageErr("consumers pause", "-until %q: want an RFC 3339 time such as 2024-01-15T09:00:00Z", *untilFlag)
		}
		if !until.After(time.Now()) {
			return usageErr("consumers pause", "-until %s has passed: a pause ends at a time to come", until.UTC().Format(time.RFC3339))
		}
	default:
		d, err := jetstream.ParseDuration(*forFlag)
		if err != nil || d <= 0 {
			return usageErr("consumers pause", "-for %q: want a positive duration such as 90s, 15m, 2h or 1d", *forFlag)
		}
		until = time.Now().Add(d)
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ci, err := c.findConsumer(ctx, *stream, group)
	if err != nil {
		return err
	}
	resp, err := c.js.PauseConsumer(ctx, ci.Stream, ci.Name, until)
	if err != nil {
		return c.explain(ctx, err, "pausing consumer "+ci.Stream+"/"+ci.Name)
	}
	if !resp.Paused {
		return opErr(fmt.Sprintf("the server did not pause %s/%s", ci.Stream, ci.Name),
			"consumer pause needs nats-server 2.11 or later", transport.ErrUnsupported)
	}
	parts, err := c.partitionDurables(ctx, ci.Stream, ci.Name)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := c.js.PauseConsumer(ctx, ci.Stream, p, until); err != nil {
			return c.explain(ctx, err, "pausing partition "+ci.Stream+"/"+p)
		}
	}
	fmt.Fprintf(stdout, "paused %s/%s%s until %s (for %s): nothing is delivered to it until then, when it resumes by itself; 'jetevents consumers resume %s -stream %s' resumes it now\n",
		ci.Stream, ci.Name, partsText(parts), resp.PauseUntil.UTC().Format(time.RFC3339), roundText(time.Until(resp.PauseUntil)), ci.Name, ci.Stream)
	return nil
}

// partitionDurables are the durables of the partitions of group on stream
// (<group>-p<n>), when it is partitioned.
func (c *conn) partitionDurables(ctx context.Context, stream, group string) ([]string, error) {
	cs, err := c.consumers(ctx, stream)
	if err != nil {
		return nil, err
	}
	byN := map[int]string{}
	for _, ci := range cs {
		if n, ok := strings.CutPrefix(ci.Name, group+"-p"); ok {
			if i, err := strconv.Atoi(n); err == nil {
				byN[i] = ci.Name
			}
		}
	}
	var out []string
	for _, i := range slices.Sorted(maps.Keys(byN)) {
		out = append(out, byN[i])
	}
	return out, nil
}

// partsText names the partitions paused or resumed with their group.
func partsText(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf(" and its %d partitions (%s)", len(parts), strings.Join(parts, ", "))
}

// consumersResume resumes a paused durable at once.
func consumersResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("consumers resume", stderr)
	cf := addConnFlags(fs)
	stream := fs.String("stream", "", "the stream of the consumer (default: the one stream that has a consumer of that name)")
	group, err := groupArg(fs, "consumers resume", args)
	if err != nil {
		return err
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ci, err := c.findConsumer(ctx, *stream, group)
	if err != nil {
		return err
	}
	if _, err := c.js.ResumeConsumer(ctx, ci.Stream, ci.Name); err != nil {
		return c.explain(ctx, err, "resuming consumer "+ci.Stream+"/"+ci.Name)
	}
	parts, err := c.partitionDurables(ctx, ci.Stream, ci.Name)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := c.js.ResumeConsumer(ctx, ci.Stream, p); err != nil {
			return c.explain(ctx, err, "resuming partition "+ci.Stream+"/"+p)
		}
	}
	if !ci.Paused {
		fmt.Fprintf(stdout, "%s/%s was not paused: nothing changed\n", ci.Stream, ci.Name)
		return nil
	}
	fmt.Fprintf(stdout, "resumed %s/%s%s: it delivers again\n", ci.Stream, ci.Name, partsText(parts))
	return nil
}

// groupArg parses args and returns the one GROUP argument.
func groupArg(fs *flag.FlagSet, cmd string, args []string) (string, error) {
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return "", err
	}
	if len(pos) == 0 {
		return "", usageErr(cmd, "name the group: its durable consumer's name ('jetevents consumers' lists them)")
	}
	return pos[0], nil
}

// findConsumer returns the info of the durable name on stream, or, when
// stream is "", on the one stream that has a consumer of that name.
func (c *conn) findConsumer(ctx context.Context, stream, name string) (*natsjs.ConsumerInfo, error) {
	if stream != "" {
		if _, err := c.stream(ctx, stream, "stream", "-stream"); err != nil {
			return nil, err
		}
		cons, err := c.js.Consumer(ctx, stream, name)
		if errors.Is(err, natsjs.ErrConsumerNotFound) {
			return nil, c.noConsumer(ctx, stream, name, err)
		}
		if err != nil {
			return nil, c.explain(ctx, err, "looking up consumer "+stream+"/"+name)
		}
		return cons.CachedInfo(), nil
	}
	streams, err := c.streams(ctx)
	if err != nil {
		return nil, err
	}
	var found []*natsjs.ConsumerInfo
	for _, si := range streams {
		cons, err := c.js.Consumer(ctx, si.Config.Name, name)
		if errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, c.explain(ctx, err, "looking up consumer "+si.Config.Name+"/"+name)
		}
		found = append(found, cons.CachedInfo())
	}
	switch len(found) {
	case 0:
		return nil, opErr(fmt.Sprintf("no stream has a consumer %s", name),
			"check the name with 'jetevents consumers'; a service creates its group's consumer when it starts", errNotFound, natsjs.ErrConsumerNotFound)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, ci := range found {
		names = append(names, ci.Stream)
	}
	return nil, opErr(fmt.Sprintf("streams %s each have a consumer %s", strings.Join(names, ", "), name),
		"pick one with -stream", errUsage)
}

// noConsumer is the error for a consumer the stream does not have, naming
// those it has.
func (c *conn) noConsumer(ctx context.Context, stream, name string, err error) error {
	have := "no consumers"
	if cs, lerr := c.consumers(ctx, stream); lerr == nil && len(cs) > 0 {
		names := make([]string, len(cs))
		for i, ci := range cs {
			names[i] = ci.Name
		}
		have = strings.Join(names, ", ")
	}
	return opErr(fmt.Sprintf("stream %s has no consumer %s (it has %s)", stream, name, have),
		"check the name with 'jetevents consumers "+stream+"'; a service creates its consumer when it starts", errNotFound, err)
}

// roundText is d rounded for people: to the second, or the minute past an
// hour.
func roundText(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
