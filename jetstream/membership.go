package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// Membership of partitioned groups: each process of a group lists itself in
// a KV bucket (key <set>.<member>, history 1) whose entries expire after
// MemberTTL (the bucket's MaxAge), and rewrites its entry every beat; the
// live members are the keys present. Why KV: it is JetStream's replicated
// map with expiry, so a process that dies without leaving drops out by
// itself, and no coordinator process exists to fail. Who receives a
// partition's messages is not decided here: the pinned priority group of
// the partition's durable (pinned.go) lets one process at a time receive,
// whatever the processes believe; the member list only spreads the
// partitions evenly.

// defaultMemberBucket and defaultMemberTTL are TransportConfig.MemberBucket's
// and MemberTTL's defaults.
const (
	defaultMemberBucket = "jetevents_members"
	defaultMemberTTL    = 5 * time.Second
)

var _ transport.Membership = (*Transport)(nil)

// members binds the membership bucket lazily.
type members struct {
	t  *Transport
	mu sync.Mutex
	kv natsjs.KeyValue
}

// bucket binds the bucket, creating it when missing (replicated like the
// stream of set, whose first token is the stream's name).
func (m *members) bucket(ctx context.Context, set string) (natsjs.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kv != nil {
		return m.kv, nil
	}
	name := m.t.cfg.MemberBucket
	kv, err := m.t.js.KeyValue(ctx, name)
	if errors.Is(err, natsjs.ErrBucketNotFound) {
		replicas := 1
		stream, _, _ := strings.Cut(set, ".")
		if s, serr := m.t.js.Stream(ctx, stream); serr == nil {
			replicas = max(s.CachedInfo().Config.Replicas, 1)
		}
		kv, err = m.t.js.CreateKeyValue(ctx, natsjs.KeyValueConfig{
			Bucket:      name,
			Description: "jetevents: live processes of partitioned groups (<stream>.<group>.<member>), expiring after the member TTL",
			History:     1,
			TTL:         m.t.cfg.MemberTTL,
			Replicas:    replicas,
		})
		if errors.Is(err, natsjs.ErrBucketExists) {
			kv, err = m.t.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: membership bucket %s: %w", transport.ErrSubscribe, name, explainNoJetStream(err))
	}
	if st, serr := kv.Status(ctx); serr == nil && st.TTL() != m.t.cfg.MemberTTL {
		// Processes with different TTLs would drop each other too early or
		// too late.
		return nil, fmt.Errorf("%w: %w: membership bucket %s expires entries after %s, the transport's MemberTTL is %s: give every process the same MemberTTL, or delete the bucket",
			transport.ErrSubscribe, envelope.ErrInvalidConfig, name, st.TTL(), m.t.cfg.MemberTTL)
	}
	m.kv = kv
	return kv, nil
}

// MemberTTL is how long a member stays listed after its last Beat
// (TransportConfig.MemberTTL).
func (t *Transport) MemberTTL() time.Duration { return t.cfg.MemberTTL }

// Beat lists member in set for MemberTTL.
func (t *Transport) Beat(ctx context.Context, set, member string, info []byte) error {
	kv, err := t.members.bucket(ctx, set)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, set+"."+member, info); err != nil {
		return fmt.Errorf("%w: membership beat %s.%s: %w", transport.ErrPublish, set, member, err)
	}
	return nil
}

// Members lists the live members of set.
func (t *Transport) Members(ctx context.Context, set string) (map[string][]byte, error) {
	kv, err := t.members.bucket(ctx, set)
	if err != nil {
		return nil, err
	}
	// Read as a watch of the set's keys up to now: one request, the
	// values with the keys (ListKeys and a Get per key would be N+1).
	w, err := kv.WatchFiltered(ctx, []string{set + ".>"}, natsjs.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%w: membership list %s: %w", transport.ErrSubscribe, set, err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string][]byte{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: membership list %s: %w", transport.ErrTimeout, set, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("%w: membership list %s: watch ended", transport.ErrSubscribe, set)
			}
			if e == nil {
				return out, nil // caught up
			}
			out[strings.TrimPrefix(e.Key(), set+".")] = e.Value()
		}
	}
}

// Leave removes member from set.
func (t *Transport) Leave(ctx context.Context, set, member string) error {
	kv, err := t.members.bucket(ctx, set)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, set+"."+member); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
		return fmt.Errorf("%w: membership leave %s.%s: %w", transport.ErrPublish, set, member, err)
	}
	return nil
}
