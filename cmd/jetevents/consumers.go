package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
)

// cmdConsumers prints the consumers of one stream (or of every stream) with
// what an operator looks at when events do not arrive: what waits, what is
// held unacknowledged, what was redelivered, whether anything pulls, when
// it last did, whether it looks stalled, and until when it is paused. With a
// consumer name it prints that consumer's settings and state. It only reads.
// (`consumers pause` and `consumers resume`, in pause.go, write: a stream
// named "pause" or "resume" is listed with `jetevents streams list`.)
func cmdConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("consumers", stderr)
	cf := addConnFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON object per consumer instead of a table")
	membersBucket := fs.String("members-bucket", "", "the KV bucket where the processes of partitioned groups list themselves (default: the router's, jetevents_members)")
	stalledAfter := fs.Duration("stalled-after", time.Minute,
		"flag a consumer as stalled when messages wait (pending or ack pending) and nothing pulled or was delivered for this long")
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	if *stalledAfter <= 0 {
		return usageErr("consumers", "-stalled-after %s is not positive", *stalledAfter)
	}
	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now()

	if len(pos) == 2 {
		return c.consumerDetail(ctx, stdout, pos[0], pos[1], *asJSON, now, *stalledAfter)
	}
	var names []string
	if len(pos) == 1 {
		if _, err := c.stream(ctx, pos[0], "stream", "the STREAM argument"); err != nil {
			return err
		}
		names = []string{pos[0]}
	} else {
		streams, err := c.streams(ctx)
		if err != nil {
			return err
		}
		for _, si := range streams {
			names = append(names, si.Config.Name)
		}
	}
	var all []*natsjs.ConsumerInfo
	for _, n := range names {
		cs, err := c.consumers(ctx, n)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return err
		}
		all = append(all, cs...)
	}
	groups, err := jetstream.ListPartitionedGroups(ctx, c.js, *membersBucket)
	if err != nil {
		// Shown without owners: the consumers themselves were readable.
		fmt.Fprintf(stderr, "jetevents: partitioned groups' owners not shown: %v\n", err)
	}
	if len(pos) == 1 {
		groups = slices.DeleteFunc(groups, func(g jetstream.PartitionedGroup) bool { return g.Stream != pos[0] })
	}
	units := unitsOf(groups)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, ci := range all {
			v := consumerView(ci, now, *stalledAfter)
			if u, ok := units[ci.Stream+"/"+ci.Name]; ok {
				v.PartitionOf, v.Partition, v.Owners = u.group, u.name, u.owners
			}
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(all) == 0 {
		where := "on this server"
		if len(pos) == 1 {
			where = "on stream " + pos[0]
		}
		fmt.Fprintf(stdout, "no consumers %s (services create theirs when they start; or declare them in a spec file)\n", where)
		return nil
	}
	if err := consumerTable(stdout, all, now, *stalledAfter); err != nil {
		return err
	}
	return partitionTable(stdout, groups, all)
}

// unit is a durable of a partitioned group, as consumers shows it.
type unit struct {
	group  string   // the group's durable
	name   string   // its partition ("7"), or "unplaced"
	owners []string // the processes running it
}

// unitsOf indexes the units of groups by stream/durable.
func unitsOf(groups []jetstream.PartitionedGroup) map[string]unit {
	out := map[string]unit{}
	for _, g := range groups {
		for u := 0; u <= g.Count; u++ {
			name := strconv.Itoa(u)
			if u == g.Count {
				name = "unplaced"
			}
			out[g.Stream+"/"+g.UnitDurable(u)] = unit{group: g.Group, name: name, owners: g.Owners[u]}
		}
	}
	return out
}

// partitionTable prints, per partitioned group, which process runs each
// partition and what waits in it.
func partitionTable(w io.Writer, groups []jetstream.PartitionedGroup, cs []*natsjs.ConsumerInfo) error {
	if len(groups) == 0 {
		return nil
	}
	byName := map[string]*natsjs.ConsumerInfo{}
	for _, ci := range cs {
		byName[ci.Stream+"/"+ci.Name] = ci
	}
	for _, g := range groups {
		counts := map[string]int{}
		for _, owners := range g.Owners {
			for _, o := range owners {
				counts[o]++
			}
		}
		var members []string
		for name, m := range g.Members {
			members = append(members, fmt.Sprintf("%s (%s pid %d, %d units)", name, m.Host, m.PID, counts[name]))
		}
		slices.Sort(members)
		fmt.Fprintf(w, "\npartitioned group %s/%s: %d partitions, %d processes: %s\n", g.Stream, g.Group, g.Count, len(g.Members), strings.Join(members, ", "))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARTITION\tDURABLE\tOWNER\tPENDING\tACK PENDING")
		for u := 0; u <= g.Count; u++ {
			name := strconv.Itoa(u)
			if u == g.Count {
				name = "unplaced"
			}
			owner := strings.Join(g.Owners[u], " + ")
			if owner == "" {
				owner = "- (none: waiting for its next owner)"
			}
			pending, ackPending := "-", "-"
			if ci := byName[g.Stream+"/"+g.UnitDurable(u)]; ci != nil {
				pending, ackPending = strconv.FormatUint(ci.NumPending, 10), strconv.Itoa(ci.NumAckPending)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, g.UnitDurable(u), owner, pending, ackPending)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// consumerState is what consumers -json prints per consumer, and what the
// table shows.
type consumerState struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Durable     bool   `json:"durable"`
	Filter      string `json:"filter"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Waiting     int    `json:"waiting"`
	// LastActive is the last delivery or ack, RFC 3339; empty for never.
	LastActive string `json:"last_active,omitempty"`
	Stalled    bool   `json:"stalled"`
	// Paused: the consumer is paused (nats-server 2.11+) for PauseRemaining.
	Paused         bool          `json:"paused,omitempty"`
	PauseRemaining time.Duration `json:"pause_remaining_ns,omitempty"`
	// PausedUntil is when a paused consumer resumes by itself, RFC 3339
	// UTC; empty when it is not paused.
	PausedUntil string `json:"paused_until,omitempty"`
	MaxDeliver  int    `json:"max_deliver"`
	// PushBound: a push consumer with a subscriber (they do not pull, so
	// Waiting stays 0).
	PushBound bool `json:"push_bound,omitempty"`
	// PartitionOf is the partitioned group this durable reads a unit of,
	// Partition which ("7", or "unplaced" for the group's own durable),
	// Owners the processes running it (member names).
	PartitionOf string   `json:"partition_of,omitempty"`
	Partition   string   `json:"partition,omitempty"`
	Owners      []string `json:"owners,omitempty"`

	lastActive time.Time
}

func consumerView(ci *natsjs.ConsumerInfo, now time.Time, stalledAfter time.Duration) consumerState {
	s := consumerState{
		Stream: ci.Stream, Name: ci.Name, Durable: ci.Config.Durable != "", Filter: filterText(ci.Config),
		Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
		Waiting: ci.NumWaiting, MaxDeliver: ci.Config.MaxDeliver, PushBound: ci.PushBound,
	}
	s.lastActive = jetstream.ConsumerLastActive(ci)
	if !s.lastActive.IsZero() {
		s.LastActive = s.lastActive.UTC().Format(time.RFC3339)
	}
	s.Stalled = jetstream.ConsumerStalled(ci, now, stalledAfter)
	s.Paused, s.PauseRemaining = ci.Paused, ci.PauseRemaining
	if ci.Paused && ci.Config.PauseUntil != nil {
		s.PausedUntil = ci.Config.PauseUntil.UTC().Format(time.RFC3339)
	}
	return s
}

// consumerTable prints consumers as a table, with a note when some look
// stalled.
func consumerTable(w io.Writer, cs []*natsjs.ConsumerInfo, now time.Time, stalledAfter time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tFILTER\tPENDING\tACK PENDING\tREDELIVERED\tWAITING\tLAST ACTIVE\tSTALLED\tMAX DELIVER\tPAUSED UNTIL")
	var nStalled, nPaused []string
	for _, ci := range cs {
		s := consumerView(ci, now, stalledAfter)
		name := s.Name
		if !s.Durable {
			name += " (ephemeral)"
		}
		st := "no"
		if s.Stalled {
			st = "yes"
			nStalled = append(nStalled, s.Stream+"/"+s.Name)
		}
		paused := "-"
		if s.PausedUntil != "" {
			paused = s.PausedUntil
			nPaused = append(nPaused, s.Stream+"/"+s.Name+" until "+s.PausedUntil)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n",
			s.Stream, name, s.Filter, s.Pending, s.AckPending, s.Redelivered, s.Waiting,
			agoText(s.lastActive, now), st, maxDeliverText(s.MaxDeliver), paused)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(nStalled) > 0 {
		fmt.Fprintf(w, "\nstalled: %s: events wait but nothing pulled them for %s; is the service that consumes them running? (its logs; jetevents consumers STREAM CONSUMER for details)\n",
			strings.Join(nStalled, ", "), stalledAfter)
	}
	if len(nPaused) > 0 {
		fmt.Fprintf(w, "\npaused: %s: nothing is delivered to it until then, when it resumes by itself ('jetevents consumers resume GROUP -stream STREAM' resumes it now)\n",
			strings.Join(nPaused, ", "))
	}
	return nil
}

// consumerDetail prints one consumer's settings and state.
func (c *conn) consumerDetail(ctx context.Context, w io.Writer, stream, name string, asJSON bool, now time.Time, stalledAfter time.Duration) error {
	if _, err := c.stream(ctx, stream, "stream", "the STREAM argument"); err != nil {
		return err
	}
	cons, err := c.js.Consumer(ctx, stream, name)
	if errors.Is(err, natsjs.ErrConsumerNotFound) {
		return c.noConsumer(ctx, stream, name, err)
	}
	if err != nil {
		return c.explain(ctx, err, "looking up consumer "+stream+"/"+name)
	}
	ci := cons.CachedInfo()
	s := consumerView(ci, now, stalledAfter)
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	cfg := ci.Config
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("consumer", stream+"/"+name)
	if cfg.Description != "" {
		row("description", cfg.Description)
	}
	row("filter", s.Filter)
	row("deliver policy", strings.ToLower(strings.TrimPrefix(cfg.DeliverPolicy.String(), "Deliver")))
	row("ack wait", cfg.AckWait)
	row("max deliver", maxDeliverText(cfg.MaxDeliver))
	if len(cfg.BackOff) > 0 {
		row("backoff", cfg.BackOff)
	}
	row("max ack pending", cfg.MaxAckPending)
	row("created", ci.Created.UTC().Format(time.RFC3339))
	row("pending", s.Pending)
	row("ack pending", s.AckPending)
	row("redelivered", s.Redelivered)
	row("waiting pulls", s.Waiting)
	row("delivered up to", fmt.Sprintf("stream seq %d", ci.Delivered.Stream))
	row("acked up to", fmt.Sprintf("stream seq %d", ci.AckFloor.Stream))
	row("last active", agoText(s.lastActive, now))
	stalledText := "no"
	if s.Stalled {
		stalledText = fmt.Sprintf("yes: events wait and nothing pulled them for %s; is the service that consumes them running?", stalledAfter)
	}
	row("stalled", stalledText)
	if s.Paused {
		row("paused", fmt.Sprintf("yes, until %s (for %s more), then it resumes by itself", s.PausedUntil, roundText(s.PauseRemaining)))
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

// agoText is "never", "12s ago", "3m ago", "5h ago" or "2d ago".
func agoText(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
