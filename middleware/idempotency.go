package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"net/textproto"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Holder identifies the delivery that claims an event: the stream message
// (stream and sequence) and its delivery attempt. Zero fields mean unknown
// (a message that did not come from a transport).
type Holder struct {
	Stream    string `json:"stream,omitempty"`
	StreamSeq uint64 `json:"seq,omitempty"`
	Attempt   uint64 `json:"attempt,omitempty"`
}

func (h Holder) known() bool { return h.Stream != "" && h.StreamSeq > 0 }

func (h Holder) sameMessage(o Holder) bool {
	return h.known() && h.Stream == o.Stream && h.StreamSeq == o.StreamSeq
}

// ClaimStatus is the outcome of Store.Claim.
type ClaimStatus int

const (
	// ClaimAcquired: the caller holds the event and must handle it, then
	// Complete (success) or Release (failure) the claim.
	ClaimAcquired ClaimStatus = iota + 1
	// ClaimProcessed: the event was already handled; ack without handling.
	ClaimProcessed
	// ClaimDuplicate: another stream message carrying the same event id holds
	// a claim. That message's own delivery cycle settles the event (handled,
	// retried, or dead-lettered), so this copy is acked without handling.
	ClaimDuplicate
	// ClaimBusy: a delivery whose fate cannot be told holds a live claim;
	// retry later (the claim is taken over once it expires).
	ClaimBusy
)

// String names the status for logs.
func (s ClaimStatus) String() string {
	switch s {
	case ClaimAcquired:
		return "acquired"
	case ClaimProcessed:
		return "processed"
	case ClaimDuplicate:
		return "duplicate"
	case ClaimBusy:
		return "busy"
	}
	return fmt.Sprintf("ClaimStatus(%d)", int(s))
}

// Claim is a store's answer to Claim.
type Claim struct {
	// Key is the claimed key.
	Key string
	// Status says what the caller must do.
	Status ClaimStatus
	// Holder is the caller (ClaimAcquired) or the current holder (otherwise).
	Holder Holder
	// Revision is the store's revision of the caller's claim, checked by
	// Release so that a claim taken over by another delivery is not deleted.
	Revision uint64
}

// Store records which events a consumer has processed, with a claim step so
// that two processes handling the same event at the same time do not both
// run the handler. Implementations must be safe for concurrent use and
// atomic per key (KVStore: JetStream KV Create and compare-and-set Update;
// MemoryStore: a mutex). Both also implement Watermill's
// middleware.ExpiringKeyRepository.
type Store interface {
	// Claim tries to take key for holder. It takes over a claim left by an
	// earlier delivery of the same stream message (a higher attempt means the
	// broker gave up on that delivery) or an expired claim.
	Claim(ctx context.Context, key string, holder Holder) (Claim, error)
	// Complete marks the claimed key processed; it is remembered for the
	// store's TTL.
	Complete(ctx context.Context, c Claim) error
	// Release drops the claim (the handler failed), unless another delivery
	// took it over meanwhile, so that the next delivery can claim the key.
	Release(ctx context.Context, c Claim) error
}

// record is a store's value for a key: a live claim or a processed mark.
type record struct {
	State string `json:"state"`
	Holder
	// Until is when a claim expires (Unix nanoseconds); 0 for done.
	Until int64 `json:"until,omitempty"`
}

const (
	stateClaimed = "claimed"
	stateDone    = "done"
)

func claimRecord(h Holder, until time.Time) []byte {
	b, _ := json.Marshal(record{State: stateClaimed, Holder: h, Until: until.UnixNano()})
	return b
}

func doneRecord(h Holder) []byte {
	b, _ := json.Marshal(record{State: stateDone, Holder: h})
	return b
}

func parseRecord(key string, b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil || (r.State != stateClaimed && r.State != stateDone) {
		return record{}, fmt.Errorf("%w: key %s: malformed record %q", ErrStore, key, b)
	}
	return r, nil
}

// decide says what a new claim by h meets in an existing record: ClaimAcquired
// means the existing claim may be taken over.
func decide(r record, h Holder, now time.Time) ClaimStatus {
	if r.State == stateDone {
		return ClaimProcessed
	}
	expired := now.UnixNano() >= r.Until
	if r.sameMessage(h) {
		// The broker redelivers a message only after the previous delivery
		// was nacked or its AckWait expired (InProgress keeps a live handler's
		// delivery from expiring): a later attempt supersedes the claim.
		if h.Attempt > r.Attempt || expired {
			return ClaimAcquired
		}
		return ClaimBusy
	}
	if r.known() && h.known() {
		// Another stored copy of the event holds the claim: its own delivery
		// cycle settles the event, unless the claim expired (its holder
		// crashed, or was dead-lettered without releasing it): then this
		// copy takes over rather than being acked unhandled.
		if expired {
			return ClaimAcquired
		}
		return ClaimDuplicate
	}
	if expired {
		return ClaimAcquired
	}
	return ClaimBusy
}

// Default idempotency settings.
const (
	// DefaultIdempotencyTTL: how long a processed id is remembered.
	DefaultIdempotencyTTL = 24 * time.Hour
	// DefaultClaimTTL: how long a claim blocks other deliveries of an event
	// whose holder cannot be identified, before it may be taken over.
	DefaultClaimTTL = 5 * time.Minute
	// DefaultStoreTimeout bounds each store operation of the middleware.
	DefaultStoreTimeout = 5 * time.Second
)

// IdempotencyConfig configures Idempotency.
type IdempotencyConfig struct {
	// Store records processed ids. Required: a *KVStore in production (shared
	// by every process bound to the consumer), a *MemoryStore in tests.
	Store Store
	// Namespace separates the ids of different consumers in one store.
	// Default "": "<stream>.<consumer>" of the delivery, or the Watermill
	// handler name for a message that did not come from the jetstream
	// subscriber. An event is processed once per namespace.
	Namespace string
	// StoreTimeout bounds each store operation. Recording the outcome runs on
	// a context that ignores the message's cancellation (the handler's
	// deadline or shutdown must not prevent it). Default 5s.
	StoreTimeout time.Duration
	// OnError receives the store failures that do not change the delivery's
	// outcome (recording a handled event, releasing a failed one); they are
	// also logged at error level. Default nil: logged only.
	OnError func(error)
	// Logger logs skipped duplicates (debug) and store failures (error).
	// Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *IdempotencyConfig) setDefaults() {
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match ErrInvalidConfig.
func (c IdempotencyConfig) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	}
	if c.StoreTimeout < 0 {
		return fmt.Errorf("%w: StoreTimeout %s is negative", ErrInvalidConfig, c.StoreTimeout)
	}
	return nil
}

// Idempotency runs a handler at most once per event id and namespace while
// the store remembers the id, and records the id only after the handler
// succeeded. Safe for concurrent use.
//
// Guarantees and limits, stated honestly:
//   - A delivery whose event is already recorded is acked without calling
//     the handler. A failed handler releases its claim: the event stays
//     unprocessed and is retried.
//   - Two deliveries of the same event at the same time (the event published
//     twice, two processes on one durable) do not both run the handler: the
//     first claims the id atomically, the other is acked (ClaimDuplicate)
//     because the holder's own stream message will be settled by its own
//     delivery cycle, or retried later (ClaimBusy) when the holder cannot
//     be identified.
//   - If the process dies after the handler's side effects and before the
//     id is recorded, the redelivery runs the handler again: handling is
//     effectively-once only when recording succeeds, at-least-once otherwise.
//     A failure to record after success is reported (OnError, log) and the
//     message is still acked, because the handler did its work.
//   - Messages the handler returns are published by the router after this
//     middleware recorded the id; if that publish fails, the redelivery is
//     acked as processed without them. Handlers that must not lose outputs
//     publish them themselves (a failure is then a handler error).
type Idempotency struct {
	cfg   IdempotencyConfig
	debug bool
	// prefetched holds the claims started by Prefetch, per delivery, until
	// the middleware takes them (or Discard drops them).
	prefetched sync.Map // *transport.Delivery -> prefetch
}

type prefetch struct {
	key    string
	result func(context.Context) (Claim, error)
}

// NewIdempotency returns the idempotency middleware configured by cfg.
// Errors match ErrInvalidConfig.
func NewIdempotency(cfg IdempotencyConfig) (*Idempotency, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Idempotency{cfg: cfg, debug: DebugEnabled(cfg.Logger)}, nil
}

// AsyncClaimer is implemented by stores that can start a claim without
// waiting for its answer (KVStore): Prefetch uses it to overlap the claims
// of queued events with the handling of the ones before them. The returned
// function waits for the answer (bounded by its ctx); a store answers as
// Claim would.
type AsyncClaimer interface {
	ClaimAsync(key string, holder Holder) func(context.Context) (Claim, error)
}

// Prefetch starts the claim of d's event before the middleware handles it
// (the router calls it for every message it queues), when the store is an
// AsyncClaimer and d names its event in its headers (Nats-Msg-Id equal to
// ce-id, as the module's publishers write them). The middleware then uses
// that claim instead of making one; if the event in the payload has another
// id, the prefetched claim is released and a new one made. Discard drops
// the prefetch of a message handed back unhandled (its claim is taken over
// by the message's redelivery, a later attempt).
func (i *Idempotency) Prefetch(d *transport.Delivery) {
	ac, ok := i.cfg.Store.(AsyncClaimer)
	if !ok || d == nil || d.StreamSeq == 0 {
		return
	}
	id := headerValue(d.Header, "Nats-Msg-Id")
	if id == "" || id != headerValue(d.Header, marshaler.HeaderID) {
		return
	}
	key := i.namespace(nil, d) + "/" + id
	i.prefetched.Store(d, prefetch{key: key, result: ac.ClaimAsync(key, Holder{Stream: d.Stream, StreamSeq: d.StreamSeq, Attempt: d.Attempt})})
}

// Discard forgets the prefetched claim of d, if any.
func (i *Idempotency) Discard(d *transport.Delivery) { i.prefetched.Delete(d) }

// claim returns the prefetched claim of dv when it is for key, else makes
// one.
func (i *Idempotency) claim(ctx context.Context, dv *transport.Delivery, key string, h Holder) (Claim, error) {
	if v, ok := i.prefetched.LoadAndDelete(dv); ok {
		p := v.(prefetch)
		c, err := p.result(ctx)
		if p.key == key {
			return c, err
		}
		if err == nil && c.Status == ClaimAcquired {
			_ = i.cfg.Store.Release(ctx, c)
		}
	}
	return i.cfg.Store.Claim(ctx, key, h)
}

// headerValue is the first value of header k (exact key, then canonical).
func headerValue(h map[string][]string, k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	if vs := h[textproto.CanonicalMIMEHeaderKey(k)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Key returns the store key of msg: namespace + "/" + event id.
func (i *Idempotency) Key(msg *message.Message) string {
	return i.namespace(msg, deliveryOf(msg)) + "/" + eventID(msg)
}

// namespace is the key space of a delivery; msg may be nil.
func (i *Idempotency) namespace(msg *message.Message, dv *transport.Delivery) string {
	switch {
	case i.cfg.Namespace != "":
		return i.cfg.Namespace
	case dv.Stream != "" && dv.Consumer != "":
		return dv.Stream + "." + dv.Consumer
	}
	return dv.Subject
}

// Middleware claims the event before the handler and records it after:
// see Idempotency for the guarantees. A claim that cannot be made (store
// unreachable) or a ClaimBusy returns an error (ErrStore / ErrClaimed), so
// the message is retried, never acked unhandled.
func (i *Idempotency) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		dv := deliveryOf(msg)
		key := i.namespace(msg, dv) + "/" + eventID(msg)
		holder := Holder{Stream: dv.Stream, StreamSeq: dv.StreamSeq, Attempt: dv.Attempt}

		ctx, cancel := context.WithTimeout(msg.Context(), i.cfg.StoreTimeout)
		c, err := i.claim(ctx, dv, key, holder)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("idempotency: claim %s: %w", key, err)
		}
		fields := func() watermill.LogFields {
			return watermill.LogFields{"key": key, "status": c.Status.String(), "holder_seq": c.Holder.StreamSeq}
		}
		switch c.Status {
		case ClaimAcquired:
		case ClaimProcessed, ClaimDuplicate:
			if i.debug {
				i.cfg.Logger.Debug("Event already handled, acked without calling the handler", fields())
			}
			msg.Metadata.Set(MetadataSkipped, SkippedDuplicate)
			return nil, nil
		default:
			return nil, fmt.Errorf("%w: %s (held by stream seq %d attempt %d)", ErrClaimed, key, c.Holder.StreamSeq, c.Holder.Attempt)
		}

		out, herr := h(msg)

		sctx, scancel := context.WithTimeout(context.WithoutCancel(msg.Context()), i.cfg.StoreTimeout)
		defer scancel()
		if herr != nil {
			if err := i.cfg.Store.Release(sctx, c); err != nil {
				i.report("Idempotency claim not released; it expires or is taken over by the next delivery", fmt.Errorf("idempotency: release %s: %w", key, err), fields())
			}
			return out, herr
		}
		if err := i.cfg.Store.Complete(sctx, c); err != nil {
			i.report("Handled event not recorded as processed; a duplicate may be handled again", fmt.Errorf("idempotency: complete %s: %w", key, err), fields())
		}
		return out, nil
	}
}

func (i *Idempotency) report(msg string, err error, fields watermill.LogFields) {
	i.cfg.Logger.Error(msg, err, fields)
	if i.cfg.OnError != nil {
		i.cfg.OnError(err)
	}
}

// Both stores plug into Watermill's Deduplicator too.
var (
	_ wmmiddleware.ExpiringKeyRepository = (*KVStore)(nil)
	_ wmmiddleware.ExpiringKeyRepository = (*MemoryStore)(nil)
)
