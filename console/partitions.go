package console

import (
	"context"
	"time"
)

// PartitionSource is the extension point for ordered, partitioned groups
// (events ordered by key, each partition owned by one process at a time):
// the group page asks it for the group's partitions and shows each with
// its owner. The router of partitioned groups implements it (given as
// Config.Partitions); without one, every group shows as not partitioned.
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
