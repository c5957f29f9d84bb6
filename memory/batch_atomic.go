package memory

import (
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// AtomicEvent is one event of an atomic batch (transport.AtomicEvent, as
// jetstream.AtomicEvent).
type AtomicEvent = transport.AtomicEvent

// AtomicAck confirms a committed atomic batch (transport.AtomicAck).
type AtomicAck = transport.AtomicAck

// PublishAtomic stores the events of batch all or none, in order, at
// contiguous sequences of one stream, as jetstream.Publisher.PublishAtomic
// does on JetStream (the stream must allow it:
// StreamConfig.AllowAtomicPublish). It takes ExpectLastSequence (checked
// before anything is stored) and TTL; schedules are refused. Errors match
// what JetStream's do: a *BatchError for invalid events (nothing stored),
// transport.ErrBatchTooLarge, transport.ErrInvalidOption, and with transport.ErrPublish: transport.ErrNoStream,
// transport.ErrAtomicDisabled, a *transport.ConflictError (transport.ErrConflict),
// transport.ErrBatchDuplicate (an event id stored within the duplicates window),
// transport.ErrBatchAbandoned (the events span two streams: on JetStream the server
// abandons such a batch), transport.ErrTTLDisabled, envelope.ErrTooLarge, transport.ErrClosed.
func (p *Publisher) PublishAtomic(ctx context.Context, batch []AtomicEvent, opts ...transport.PublishOption) (AtomicAck, error) {
	if len(batch) == 0 {
		return AtomicAck{}, nil
	}
	where := fmt.Sprintf("publish atomic batch of %d events (first %s)", len(batch), batch[0].Subject)
	if p.isClosed() {
		return AtomicAck{}, fmt.Errorf("%s: %w", where, transport.ErrClosed)
	}
	if len(batch) > transport.MaxAtomicBatch {
		return AtomicAck{}, fmt.Errorf("%s: %w: at most %d events per atomic batch", where, transport.ErrBatchTooLarge, transport.MaxAtomicBatch)
	}
	o, err := transport.ResolvePublishOptions(opts)
	if err != nil {
		return AtomicAck{}, fmt.Errorf("%s: %w", where, err)
	}
	if o.Scheduled() {
		return AtomicAck{}, fmt.Errorf("%s: %w: an atomic batch is stored now (schedule its events one by one)", where, transport.ErrInvalidOption)
	}
	msgs := make([]*nats.Msg, len(batch))
	errs := make([]error, len(batch))
	ids := make(map[string]int, len(batch))
	invalid := false
	now := p.b.now()
	for i, ae := range batch {
		msgs[i], errs[i] = p.m.PublishMsg(ctx, ae.Subject, ae.Event, int64(p.b.MaxPayload()))
		if errs[i] == nil {
			if j, dup := ids[ae.Event.ID]; dup {
				errs[i] = fmt.Errorf("publish %s event %s: %w: the batch holds it twice (events %d and %d)", ae.Subject, ae.Event.ID, envelope.ErrInvalidEvent, j, i)
			}
			ids[ae.Event.ID] = i
		}
		if errs[i] != nil {
			invalid = true
			continue
		}
		eo := o
		eo.Expect = o.Expect && i == 0
		eo.Apply(msgs[i], ae.Event.ID, now)
	}
	if invalid {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("publish %s event %s: %w: another event of the atomic batch is invalid", batch[i].Subject, batch[i].Event.ID, transport.ErrNotSent)
			}
		}
		return AtomicAck{}, &BatchError{Errs: errs}
	}
	if err := ctx.Err(); err != nil {
		return AtomicAck{}, fmt.Errorf("%s: %w: not committed: %w", where, transport.ErrBatchAbandoned, err)
	}
	ack, err := p.b.publishAtomic(msgs)
	if err != nil {
		return AtomicAck{}, fmt.Errorf("%s: %w", where, err)
	}
	return ack, nil
}

// publishAtomic stores msgs (checked and encoded) all or none, under the
// bus's lock: every check of every message passes before the first is
// stored, so nothing else is stored between them.
func (b *Bus) publishAtomic(msgs []*nats.Msg) (AtomicAck, error) {
	for _, m := range msgs {
		if n := marshaler.WireSize(m.Header, m.Data); b.cfg.MaxPayload > 0 && n > b.cfg.MaxPayload {
			return AtomicAck{}, fmt.Errorf("%w: %w: %s: %d bytes with headers, max payload %d", transport.ErrPublish, envelope.ErrTooLarge, m.Subject, n, b.cfg.MaxPayload)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return AtomicAck{}, fmt.Errorf("%w: %w", transport.ErrPublish, transport.ErrClosed)
	}
	s := b.streamForLocked(msgs[0].Subject)
	if s == nil {
		return AtomicAck{}, fmt.Errorf("%w: %w %q: add a stream whose subjects match it (Config.Streams or AddStream)", transport.ErrPublish, transport.ErrNoStream, msgs[0].Subject)
	}
	if !s.cfg.AllowAtomicPublish {
		return AtomicAck{}, fmt.Errorf("%w: %w", transport.ErrPublish, s.settingErr(transport.ErrAtomicDisabled, "AllowAtomicPublish", "allow_atomic"))
	}
	now := b.now()
	checks := make([]headerChecks, len(msgs))
	for i, m := range msgs {
		if o := b.streamForLocked(m.Subject); o != s {
			return AtomicAck{}, fmt.Errorf("%w: %w: %s is not stored by stream %s, where the batch started (one batch, one stream)", transport.ErrPublish, transport.ErrBatchAbandoned, m.Subject, s.cfg.Name)
		}
		if id := m.Header.Get(nats.MsgIdHdr); id != "" {
			if e, ok := s.dedup[id]; ok && now.Sub(e.at) < s.cfg.Duplicates {
				return AtomicAck{}, fmt.Errorf("%w: %w: event %s is stored already (stream %s seq %d)", transport.ErrPublish, transport.ErrBatchDuplicate, id, s.cfg.Name, e.seq)
			}
		}
		hc, err := s.checkHeadersLocked(m.Subject, m.Header, now)
		if err != nil {
			return AtomicAck{}, fmt.Errorf("%w: %s: %w", transport.ErrPublish, m.Subject, err)
		}
		if hc.schedule != nil || hc.purgeScheduler != "" {
			return AtomicAck{}, fmt.Errorf("%w: %w: %s: schedules in an atomic batch", transport.ErrPublish, transport.ErrUnsupported, m.Subject)
		}
		checks[i] = hc
	}
	id := uuid.NewString()
	var first, last uint64
	for i, m := range msgs {
		h := nats.Header(cloneHeader(m.Header))
		h.Set(transport.HeaderBatchID, id)
		h.Set(transport.HeaderBatchSeq, strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			h.Set(transport.HeaderBatchCommit, "1")
		}
		sm := s.storeLocked(m.Subject, h, m.Data, m.Header.Get(nats.MsgIdHdr), checks[i], now)
		if i == 0 {
			first = sm.seq
		}
		last = sm.seq
	}
	s.dispatchLocked(now)
	return AtomicAck{Stream: s.cfg.Name, FirstSequence: first, LastSequence: last, Count: len(msgs), BatchID: id}, nil
}
