package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/partition"
)

// PartitionedGroup is a partitioned group as its processes list themselves
// in the membership bucket: who runs which of its units.
type PartitionedGroup struct {
	// Stream and Group (the group's durable) name it; Count is its
	// partition count (units 0..Count-1 are partitions, unit Count is the
	// group's own durable, for events published without a partition).
	Stream, Group string
	Count         int
	// Members are its live processes, by member name.
	Members map[string]partition.Member
	// Owners are the members running each unit (one, except for a moment
	// during a handover; none while a unit waits for its next owner).
	Owners map[int][]string
}

// UnitDurable is the durable of unit u of the group: <Group>-p<u>, or
// Group itself for unit Count.
func (g PartitionedGroup) UnitDurable(u int) string { return partition.Durable(g.Group, u, g.Count) }

// ListPartitionedGroups reads the partitioned groups of every stream from
// the membership bucket (TransportConfig.MemberBucket; "" for the
// default), sorted by stream and group. No bucket (no partitioned group
// ever ran): none, no error.
func ListPartitionedGroups(ctx context.Context, js natsjs.JetStream, bucket string) ([]PartitionedGroup, error) {
	if bucket == "" {
		bucket = defaultMemberBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, natsjs.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("membership bucket %s: %w", bucket, err)
	}
	w, err := kv.WatchAll(ctx, natsjs.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("membership bucket %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	groups := map[string]*PartitionedGroup{}
	for {
		var e natsjs.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e = <-w.Updates():
		}
		if e == nil {
			break // caught up
		}
		// <stream>.<group>.<member>: stream and group names hold no dots.
		parts := strings.SplitN(e.Key(), ".", 3)
		if len(parts) != 3 {
			continue
		}
		var m partition.Member
		if json.Unmarshal(e.Value(), &m) != nil {
			continue
		}
		id := parts[0] + "." + parts[1]
		g := groups[id]
		if g == nil {
			g = &PartitionedGroup{Stream: parts[0], Group: parts[1], Members: map[string]partition.Member{}, Owners: map[int][]string{}}
			groups[id] = g
		}
		g.Count = max(g.Count, m.Count)
		g.Members[parts[2]] = m
		for _, u := range m.Units {
			g.Owners[u] = append(g.Owners[u], parts[2])
		}
	}
	out := make([]PartitionedGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b PartitionedGroup) int {
		return strings.Compare(a.Stream+"."+a.Group, b.Stream+"."+b.Group)
	})
	return out, nil
}
