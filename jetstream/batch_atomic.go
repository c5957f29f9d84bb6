package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// ModeAtomic: PublishAtomic (every event's outcome is the batch's).
const ModeAtomic PublishMode = "atomic"

// AtomicEvent is one event of an atomic batch and the subject it is stored
// on (transport.AtomicEvent, shared with the memory bus).
type AtomicEvent = transport.AtomicEvent

// AtomicAck confirms a committed atomic batch: its events were stored at
// the contiguous sequences FirstSequence..LastSequence of Stream, in the
// batch's order (transport.AtomicAck).
type AtomicAck = transport.AtomicAck

// MaxAtomicBatch is the most events PublishAtomic takes: nats-server's
// default limit per atomic batch (its max_batch_size).
const MaxAtomicBatch = transport.MaxAtomicBatch

// PublishAtomic stores the events of batch all or none, in order, at
// contiguous sequences of one stream (ADR-50: nats-server 2.12 or later, the
// stream must allow it: StreamSpec.AllowAtomicPublish). With
// ExpectLastSequence(subject, seq) the batch is stored only if the last
// sequence on subject is still seq when the batch commits (optimistic
// concurrency on an aggregate); TTL applies to every event. Schedules are
// refused (transport.ErrInvalidOption). Every event is validated before anything is
// sent (a *BatchError otherwise, as for PublishBatch).
//
// How it differs from PublishBatch: PublishBatch pipelines independent
// publishes and reports one outcome per event (some may be stored, others
// not); PublishAtomic stores the whole batch or nothing, and has one
// outcome. How it differs from a transactional outbox: the batch is atomic
// within the stream, not with the service's database writes.
//
// Errors (nothing was stored unless said otherwise):
//   - *ConflictError (transport.ErrConflict): the expected sequence did not hold; it
//     carries the current one.
//   - transport.ErrBatchAbandoned: the batch never committed (the connection was lost
//     or ctx ended before the commit was sent, or the server abandoned it:
//     a message lost on the way, a leader change, 10 s idle). Safe to retry.
//   - transport.ErrAtomicDisabled (naming the stream and the fix), transport.ErrNoStream,
//     transport.ErrBatchTooLarge (more than MaxAtomicBatch events), transport.ErrBatchDuplicate
//     (an event id already stored in the duplicates window: when this is a
//     retry, the first attempt committed), transport.ErrTTLDisabled, transport.ErrClosed,
//     transport.ErrPermission.
//   - transport.ErrPublish with transport.ErrTimeout: the commit was sent but its ack did not
//     come in time. The batch may or may not be stored; publishing it again
//     is safe: it then fails with transport.ErrBatchDuplicate if it was.
//
// The wait ends at ctx's deadline, or after PublishTimeout when ctx has
// none. The events count in Stats (Published, Acked or Failed).
func (p *Publisher) PublishAtomic(ctx context.Context, batch []AtomicEvent, opts ...PublishOption) (AtomicAck, error) {
	if len(batch) == 0 {
		return AtomicAck{}, nil
	}
	var dones []func(PublishResult)
	if p.observing() {
		dones = make([]func(PublishResult), len(batch))
	}
	fail := func(err error) (AtomicAck, error) {
		for _, done := range dones {
			finish(done, err)
		}
		return AtomicAck{}, err
	}
	first := batch[0]
	where := fmt.Sprintf("publish atomic batch of %d events (first %s event %s)", len(batch), first.Subject, eventIDOrEmpty(first.Event))
	if p.isClosed() {
		return fail(fmt.Errorf("%s: %w", where, transport.ErrClosed))
	}
	if len(batch) > MaxAtomicBatch {
		return fail(fmt.Errorf("%s: %w: at most %d events per atomic batch", where, transport.ErrBatchTooLarge, MaxAtomicBatch))
	}
	o, err := transport.ResolvePublishOptions(opts)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", where, err))
	}
	if o.Scheduled() {
		return fail(fmt.Errorf("%s: %w: an atomic batch is stored now (schedule its events one by one)", where, transport.ErrInvalidOption))
	}
	msgs, err := p.encodeAtomic(ctx, batch, o, dones)
	if err != nil {
		return AtomicAck{}, err // each observer was told already
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.PublishTimeout)
		defer cancel()
	}
	p.published.Add(uint64(len(msgs)))
	ack, err := p.sendAtomic(ctx, msgs)
	if err != nil {
		p.failed.Add(uint64(len(msgs)))
		return fail(fmt.Errorf("%s: %w", where, err))
	}
	p.acked.Add(uint64(len(msgs)))
	for i, done := range dones {
		if done != nil {
			done(PublishResult{Stream: ack.Stream, Sequence: ack.FirstSequence + uint64(i)})
		}
	}
	return ack, nil
}

func eventIDOrEmpty(e *envelope.Event) string {
	if e == nil {
		return ""
	}
	return e.ID
}

// encodeAtomic validates and encodes every event of batch (observing each,
// when dones is not nil). On any failure nothing is sent and the error is a
// *BatchError with one entry per event.
func (p *Publisher) encodeAtomic(ctx context.Context, batch []AtomicEvent, o transport.PublishOptions, dones []func(PublishResult)) ([]*nats.Msg, error) {
	msgs := make([]*nats.Msg, len(batch))
	errs := make([]error, len(batch))
	ids := make(map[string]int, len(batch))
	invalid := false
	now := time.Now()
	for i, ae := range batch {
		ectx := ctx
		if dones != nil {
			ectx, dones[i] = p.observe(ctx, eventInfo(ae.Subject, ae.Event, ModeAtomic))
		}
		msgs[i], errs[i] = p.encode(ectx, ae.Subject, ae.Event)
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
		eo.Expect = o.Expect && i == 0 // the server checks it on the first message only
		eo.Apply(msgs[i], ae.Event.ID, now)
	}
	if !invalid {
		return msgs, nil
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = fmt.Errorf("publish %s event %s: %w: another event of the atomic batch is invalid", batch[i].Subject, batch[i].Event.ID, transport.ErrNotSent)
		}
		finish(doneAt(dones, i), errs[i])
	}
	return nil, &BatchError{Errs: errs}
}

// sendAtomic runs ADR-50's protocol on core NATS publishes: every message
// carries Nats-Batch-Id and Nats-Batch-Sequence, the first is a request
// (the server answers it at once: a refusal such as "atomic publish
// disabled" comes before anything else is sent), the middle ones are plain
// publishes (the server stages them), the last carries Nats-Batch-Commit
// and its reply is the batch's ack. nats.go has no atomic batch API, and
// orbit.go's jetstreamext (which has one) bounds the first reply by its
// own timeout rather than the caller's context, returns untyped server
// errors and would be a dependency for these few lines.
func (p *Publisher) sendAtomic(ctx context.Context, msgs []*nats.Msg) (AtomicAck, error) {
	id := uuid.NewString()
	n := len(msgs)
	for i, m := range msgs {
		m.Header.Set(transport.HeaderBatchID, id)
		m.Header.Set(transport.HeaderBatchSeq, strconv.Itoa(i+1))
		m.Header.Del(transport.HeaderBatchCommit)
	}
	last := msgs[n-1]
	last.Header.Set(transport.HeaderBatchCommit, "1")
	if n > 1 {
		resp, err := p.nc.RequestMsgWithContext(ctx, msgs[0])
		if err != nil {
			return AtomicAck{}, p.atomicSendErr(ctx, msgs[0], err, false)
		}
		if len(resp.Data) > 0 {
			if _, err := p.atomicReply(ctx, msgs[0], resp.Data, id, n); err != nil {
				return AtomicAck{}, err
			}
		}
		for _, m := range msgs[1 : n-1] {
			if err := ctx.Err(); err != nil {
				return AtomicAck{}, fmt.Errorf("%w: not committed (the server drops the staged events): %w", transport.ErrBatchAbandoned, ctxErr(ctx))
			}
			if err := p.nc.PublishMsg(m); err != nil {
				return AtomicAck{}, p.atomicSendErr(ctx, m, err, false)
			}
		}
	}
	resp, err := p.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return AtomicAck{}, p.atomicSendErr(ctx, last, err, true)
	}
	return p.atomicReply(ctx, msgs[0], resp.Data, id, n)
}

// atomicSendErr is the error of a message of the batch that could not be
// sent or got no reply; committed says whether it was the commit (whose
// outcome is then unknown).
func (p *Publisher) atomicSendErr(ctx context.Context, m *nats.Msg, err error, committed bool) error {
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: %w %q: create a stream whose subjects match it (./scripts/setup-nats-streams.sh, or jetstream.Apply with a StreamSpec): %w",
			transport.ErrPublish, transport.ErrNoStream, m.Subject, err)
	}
	err = publishPermission(p.nc, m, err)
	if errors.Is(err, transport.ErrPermission) {
		return fmt.Errorf("%w: %w", transport.ErrPublish, err)
	}
	if !committed {
		return fmt.Errorf("%w: not committed (the server drops the staged events): %w", transport.ErrBatchAbandoned, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		err = fmt.Errorf("%w: %w", transport.ErrTimeout, err)
	}
	return fmt.Errorf("%w: commit sent, no ack: the batch may or may not be stored (publishing it again is safe: transport.ErrBatchDuplicate then says it was): %w", transport.ErrPublish, err)
}

// atomicAckResponse is the server's reply to a batch message.
type atomicAckResponse struct {
	Error   *natsjs.APIError `json:"error,omitempty"`
	Stream  string           `json:"stream"`
	Seq     uint64           `json:"seq"`
	Domain  string           `json:"domain,omitempty"`
	BatchID string           `json:"batch,omitempty"`
	Count   int              `json:"count,omitempty"`
}

// atomicReply reads the server's reply to a message of batch id of n
// messages, whose first message is first (the one carrying the
// expectation): the commit's ack, or a refusal.
func (p *Publisher) atomicReply(ctx context.Context, first *nats.Msg, data []byte, id string, n int) (AtomicAck, error) {
	var r atomicAckResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return AtomicAck{}, fmt.Errorf("%w: unreadable reply %q: %w", transport.ErrPublish, data, err)
	}
	if r.Error != nil {
		return AtomicAck{}, p.atomicRefusal(ctx, first, r)
	}
	if r.BatchID != id || r.Count != n || r.Stream == "" || r.Seq < uint64(n) {
		return AtomicAck{}, fmt.Errorf("%w: the ack %q does not confirm batch %s of %d events", transport.ErrPublish, data, id, n)
	}
	return AtomicAck{Stream: r.Stream, FirstSequence: r.Seq - uint64(n) + 1, LastSequence: r.Seq, Count: r.Count, BatchID: id, Domain: r.Domain}, nil
}

// atomicRefusal maps the server's refusal of the batch whose first message
// is first to this package's sentinels; each also matches transport.ErrPublish and
// keeps the server's error.
func (p *Publisher) atomicRefusal(ctx context.Context, first *nats.Msg, r atomicAckResponse) error {
	apiErr := r.Error
	stream := func(string) string { return r.Stream }
	var err error
	switch apiErr.ErrorCode {
	case jsErrCodeAtomicIncomplete:
		err = fmt.Errorf("%w (a message of it was lost, the stream's leader changed, or it was idle 10s): %w", transport.ErrBatchAbandoned, apiErr)
	case jsErrCodeAtomicTooLarge:
		err = fmt.Errorf("%w: %w", transport.ErrBatchTooLarge, apiErr)
	case jsErrCodeAtomicDuplicate:
		err = fmt.Errorf("%w: %w", transport.ErrBatchDuplicate, apiErr)
	case jsErrCodeAtomicTooManyInflight:
		err = fmt.Errorf("%w: the server has too many atomic batches in flight (50 per stream); retry: %w", transport.ErrBatchAbandoned, apiErr)
	case natsjs.JSErrCodeStreamNotFound:
		err = fmt.Errorf("%w: %w", transport.ErrNoStream, apiErr)
	default:
		err = refusalErr(first, apiErr, stream)
		var ce *ConflictError
		if errors.As(err, &ce) && !ce.CurrentKnown {
			ce.Current, ce.CurrentKnown = p.lastSequence(ctx, first.Subject, ce.Subject)
		}
	}
	return fmt.Errorf("%w: %w", transport.ErrPublish, err)
}
