package middleware

import (
	"context"
	"fmt"
	"net/textproto"
	"sync"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// defaultStoreTimeout bounds each store operation of the middleware.
const defaultStoreTimeout = 5 * time.Second

// IdempotencyConfig configures Idempotency.
type IdempotencyConfig struct {
	// Store records processed ids. Required: a jetstream.KVStore in
	// production (shared by every process bound to the consumer), an
	// idempotency.MemoryStore in tests.
	Store idempotency.Store
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
		c.StoreTimeout = defaultStoreTimeout
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c IdempotencyConfig) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: Store is required", envelope.ErrInvalidConfig)
	}
	if c.StoreTimeout < 0 {
		return fmt.Errorf("%w: StoreTimeout %s is negative", envelope.ErrInvalidConfig, c.StoreTimeout)
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
//     first claims the id atomically, the other is acked (idempotency.ClaimDuplicate)
//     because the holder's own stream message will be settled by its own
//     delivery cycle, or retried later (idempotency.ClaimBusy) when the holder cannot
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
	result func(context.Context) (idempotency.Claim, error)
}

// NewIdempotency returns the idempotency middleware configured by cfg.
// Errors match envelope.ErrInvalidConfig.
func NewIdempotency(cfg IdempotencyConfig) (*Idempotency, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Idempotency{cfg: cfg, debug: DebugEnabled(cfg.Logger)}, nil
}

// Prefetch starts the claim of d's event before the middleware handles it
// (the router calls it for every message it queues), when the store is an
// idempotency.AsyncClaimer and d names its event in its headers (Nats-Msg-Id equal to
// ce-id, as the module's publishers write them). The middleware then uses
// that claim instead of making one; if the event in the payload has another
// id, the prefetched claim is released and a new one made. Discard drops
// the prefetch of a message handed back unhandled (its claim is taken over
// by the message's redelivery, a later attempt).
func (i *Idempotency) Prefetch(d *transport.Delivery) {
	ac, ok := i.cfg.Store.(idempotency.AsyncClaimer)
	if !ok || d == nil || d.StreamSeq == 0 {
		return
	}
	id := headerValue(d.Header, "Nats-Msg-Id")
	if id == "" || id != headerValue(d.Header, marshaler.HeaderID) {
		return
	}
	key := i.namespace(nil, d) + "/" + id
	i.prefetched.Store(d, prefetch{key: key, result: ac.ClaimAsync(key, idempotency.Holder{Stream: d.Stream, StreamSeq: d.StreamSeq, Attempt: d.Attempt})})
}

// Discard forgets the prefetched claim of d, if any.
func (i *Idempotency) Discard(d *transport.Delivery) { i.prefetched.Delete(d) }

// claim returns the prefetched claim of dv when it is for key, else makes
// one.
func (i *Idempotency) claim(ctx context.Context, dv *transport.Delivery, key string, h idempotency.Holder) (idempotency.Claim, error) {
	if v, ok := i.prefetched.LoadAndDelete(dv); ok {
		p := v.(prefetch)
		c, err := p.result(ctx)
		if p.key == key {
			return c, err
		}
		if err == nil && c.Status == idempotency.ClaimAcquired {
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
// unreachable) or an idempotency.ClaimBusy returns an error (idempotency.ErrStore / ErrClaimed), so
// the message is retried, never acked unhandled.
func (i *Idempotency) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		dv := deliveryOf(msg)
		key := i.namespace(msg, dv) + "/" + eventID(msg)
		holder := idempotency.Holder{Stream: dv.Stream, StreamSeq: dv.StreamSeq, Attempt: dv.Attempt}

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
		case idempotency.ClaimAcquired:
		case idempotency.ClaimProcessed, idempotency.ClaimDuplicate:
			if i.debug {
				i.cfg.Logger.Debug("Event already handled, acked without calling the handler", fields())
			}
			setVerdict(msg, transport.Skip(transport.SkipDuplicate))
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
