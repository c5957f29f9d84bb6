// Package partition spreads a keyed subject space over a fixed number of
// partitions that JetStream can tell apart, so that several processes can
// share one group's events while each key stays with one process at a
// time (router.GroupConfig.Partitions).
//
// JetStream filters consumers by subject only, so the partition is written
// into the subject by the publisher (jetstream.PublisherConfig.Partitions):
// an event for subject auth.user.created whose key falls in partition 7 is
// stored on auth.p7.user.created (the token p<n> after the subject's first
// token) with the header
// Jetevents-Partition: 7/12. The stream's subjects (auth.>) hold it as they
// are; a consumer filtered on auth.> (an audit group) still sees every
// event; a partitioned group reads partition 7 through a durable of its own
// filtered on auth.p7.user.>. A key's partition is FNV-1a (32 bit) of the
// key modulo the count, so a publisher in another language can place events
// the same way.
//
// Which process reads which partition is decided by Assign from the live
// members of the group; JetStream's pinned priority groups (nats-server
// 2.11, ADR-42) make sure that only one process receives a partition's
// messages at a time, whatever each process believes.
package partition
