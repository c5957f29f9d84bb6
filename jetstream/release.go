package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The release ledger: JetStream counts every delivery of a message, also the
// ones the router never handed to a handler (queued when a group stopped, and
// handed back). Read as handler attempts, each stop would spend an attempt of
// every queued event (with MaxDeliver 1, a rolling restart dead-letters them
// all). JetStream offers no way to hand a delivery back uncounted, so the
// transport counts the releases itself, per durable and stream sequence, in a
// KV bucket (history 1, entries expiring after ReleaseTTL), and the exact
// handler attempt is the delivery count less the releases. The bucket is
// written only when a group stops with events queued, and read only when a
// delivery's count reaches the attempt limit, so the hot path never touches
// it. Why a KV bucket: the count must outlive the process that released (a
// rolling restart hands the events to other processes), and KV is the
// JetStream primitive for a small replicated counter with compare-and-set.

// defaultReleaseBucket is TransportConfig.ReleaseBucket's default.
const defaultReleaseBucket = "jetevents_releases"

// defaultReleaseTTL is TransportConfig.ReleaseTTL's default.
const defaultReleaseTTL = 7 * 24 * time.Hour

// releaseLedger counts the deliveries released unhandled, per durable and
// stream sequence.
type releaseLedger struct {
	t *Transport

	mu     sync.Mutex
	kv     natsjs.KeyValue
	warned bool
}

func releaseKey(stream, durable string, seq uint64) string {
	return stream + "." + durable + "." + strconv.FormatUint(seq, 10)
}

// bucket binds the ledger's bucket, creating it when create is set and it is
// missing (replicated like stream, the stream the releases are of). It
// returns nil, nil when the bucket does not exist and create is false.
func (l *releaseLedger) bucket(ctx context.Context, stream string, create bool) (natsjs.KeyValue, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kv != nil {
		return l.kv, nil
	}
	kv, err := l.t.js.KeyValue(ctx, l.t.cfg.ReleaseBucket)
	switch {
	case err == nil:
	case errors.Is(err, natsjs.ErrBucketNotFound) && !create:
		// Not bound: another process may create it later, so the next
		// lookup binds again.
		return nil, nil
	case errors.Is(err, natsjs.ErrBucketNotFound):
		replicas := 1
		if s, serr := l.t.js.Stream(ctx, stream); serr == nil {
			replicas = max(s.CachedInfo().Config.Replicas, 1)
		}
		kv, err = l.t.js.CreateKeyValue(ctx, natsjs.KeyValueConfig{
			Bucket:      l.t.cfg.ReleaseBucket,
			Description: "jetevents: deliveries released unhandled (not handler attempts), per durable and stream sequence",
			History:     1,
			TTL:         l.t.cfg.ReleaseTTL,
			Replicas:    replicas,
		})
		if errors.Is(err, natsjs.ErrBucketExists) {
			kv, err = l.t.js.KeyValue(ctx, l.t.cfg.ReleaseBucket)
		}
		if err != nil {
			return nil, fmt.Errorf("create release ledger bucket %s: %w", l.t.cfg.ReleaseBucket, err)
		}
	default:
		return nil, fmt.Errorf("bind release ledger bucket %s: %w", l.t.cfg.ReleaseBucket, err)
	}
	l.kv = kv
	return kv, nil
}

// add counts one more release of the message.
func (l *releaseLedger) add(ctx context.Context, stream, durable string, seq uint64) error {
	kv, err := l.bucket(ctx, stream, true)
	if err != nil {
		return err
	}
	key := releaseKey(stream, durable, seq)
	for {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, natsjs.ErrKeyNotFound):
			_, err = kv.Create(ctx, key, []byte("1"))
		case err == nil:
			n, perr := strconv.ParseUint(string(e.Value()), 10, 64)
			if perr != nil {
				n = 0
			}
			_, err = kv.Update(ctx, key, strconv.AppendUint(nil, n+1, 10), e.Revision())
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, natsjs.ErrKeyExists) && !isWrongLastSequence(err) {
			return fmt.Errorf("release ledger %s: %w", key, err)
		}
		// Another process released the same message at once: read again.
		if ctx.Err() != nil {
			return fmt.Errorf("release ledger %s: %w", key, ctx.Err())
		}
	}
}

// count returns how many deliveries of the message were released.
func (l *releaseLedger) count(ctx context.Context, stream, durable string, seq uint64) (uint64, error) {
	kv, err := l.bucket(ctx, stream, false)
	if err != nil || kv == nil {
		return 0, err
	}
	e, err := kv.Get(ctx, releaseKey(stream, durable, seq))
	if errors.Is(err, natsjs.ErrKeyNotFound) || errors.Is(err, natsjs.ErrKeyDeleted) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("release ledger %s: %w", releaseKey(stream, durable, seq), err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("release ledger %s: value %q: %w", releaseKey(stream, durable, seq), e.Value(), err)
	}
	return n, nil
}

// unavailable logs, once per transport, that the ledger cannot be used.
func (l *releaseLedger) unavailable(log watermill.LoggerAdapter, err error) {
	l.mu.Lock()
	first := !l.warned
	l.warned = true
	l.mu.Unlock()
	if first {
		warn(log, "Release ledger unavailable: a released event's next delivery counts as a handler attempt (grant the KV bucket to the router's credentials to avoid it)",
			err, watermill.LogFields{"bucket": l.t.cfg.ReleaseBucket})
	}
}

// isWrongLastSequence reports the KV update conflict (the revision moved).
func isWrongLastSequence(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant) // R>1 streams
}
