package console

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jetevents/events/jetstream"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// PartitionSource gives the group page the partitions of a partitioned
// group (router.GroupConfig.Partitions: events ordered by key, each
// partition run by one process at a time) and their owners. Default: read
// from JetStream, where the routers list what they run (the membership
// bucket, jetstream.ListPartitionedGroups) and each partition's durable
// its counts.
type PartitionSource interface {
	// Partitions reports the partitions of the group (durable) consuming
	// stream. A group that is not partitioned returns a zero
	// GroupPartitions (Partitioned false) and no error.
	Partitions(ctx context.Context, stream, group string) (GroupPartitions, error)
}

// PartitionsFunc adapts a function to PartitionSource.
type PartitionsFunc func(ctx context.Context, stream, group string) (GroupPartitions, error)

// Partitions calls f.
func (f PartitionsFunc) Partitions(ctx context.Context, stream, group string) (GroupPartitions, error) {
	return f(ctx, stream, group)
}

// GroupPartitions are a group's partitions.
type GroupPartitions struct {
	// Partitioned is false for a group that is not partitioned.
	Partitioned bool
	// Key says what orders the events ("organization_id", "subject token
	// 3"); shown as it is.
	Key string
	// Partitions, in the order to show them.
	Partitions []Partition
}

// Partition is one partition of a group.
type Partition struct {
	// ID names it ("0", "7/16").
	ID string
	// Filter is the subject filter of its durable or priority group, when
	// it has one.
	Filter string
	// Owner is the process that holds it (a client name, host:pid); ""
	// when none does (shown as unowned: nothing consumes it).
	Owner string
	// OwnedSince is when Owner took it (zero: unknown).
	OwnedSince time.Time
	// Pending and AckPending are its counts when known.
	Pending    uint64
	AckPending int
	// State is free text ("active", "rebalancing", "paused").
	State string
}

// jetStreamPartitions is the default PartitionSource.
type jetStreamPartitions struct{ js natsjs.JetStream }

func (p jetStreamPartitions) Partitions(ctx context.Context, stream, group string) (GroupPartitions, error) {
	groups, err := jetstream.ListPartitionedGroups(ctx, p.js, "")
	if err != nil {
		return GroupPartitions{}, err
	}
	for _, g := range groups {
		if g.Stream != stream || g.Group != group {
			continue
		}
		processes := fmt.Sprintf("%d processes", len(g.Members))
		if len(g.Members) == 1 {
			processes = "1 process"
		}
		out := GroupPartitions{Partitioned: true, Key: "its order key, over " + processes}
		for u := 0; u <= g.Count; u++ {
			part := Partition{ID: strconv.Itoa(u), State: "active"}
			if u == g.Count {
				part.ID = "unplaced"
			}
			part.Owner = strings.Join(g.Owners[u], " + ")
			switch {
			case part.Owner == "":
				part.State = "waiting for its next owner"
			case len(g.Owners[u]) > 1:
				part.State = "handing over"
			}
			if len(g.Owners[u]) == 1 {
				part.OwnedSince = g.Members[g.Owners[u][0]].Started
			}
			if c, err := p.js.Consumer(ctx, stream, g.UnitDurable(u)); err == nil {
				ci := c.CachedInfo()
				part.Filter = ci.Config.FilterSubject
				part.Pending, part.AckPending = ci.NumPending, ci.NumAckPending
				if ci.Paused {
					part.State = "paused"
				}
			}
			out.Partitions = append(out.Partitions, part)
		}
		return out, nil
	}
	return GroupPartitions{}, nil
}
