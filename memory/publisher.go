package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// PublisherConfig configures a Publisher. Zero fields take the defaults.
type PublisherConfig struct {
	// Marshaler encodes events (wire contract, max size). Default
	// marshaler.Default() (1 MiB max), as jetstream.Publisher.
	Marshaler *marshaler.Marshaler
	// OnAsyncError receives every PublishAsync that was queued but not
	// stored, exactly once, on the goroutine that called PublishAsync and
	// before it returns (the bus stores at once: there is no ack to wait
	// for). Default: log it at error level with Logger.
	OnAsyncError func(AsyncError)
	// Logger logs async failures when OnAsyncError is nil. Default
	// watermill.NewSlogLogger(nil), as jetstream.Publisher.
	Logger watermill.LoggerAdapter
	// Partitions place events in their key's partition, as
	// jetstream.PublisherConfig.Partitions. Default none.
	Partitions []partition.Spec
}

// AsyncError is a PublishAsync that was queued but not stored.
type AsyncError struct {
	Subject   string
	EventID   string
	EventType string
	// Msg is the message as it was to be stored.
	Msg *nats.Msg
	// Err matches transport.ErrPublish and transport.ErrNoStream, envelope.ErrTooLarge or transport.ErrClosed.
	Err error
}

// Error is Err's message.
func (e AsyncError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e AsyncError) Unwrap() error { return e.Err }

// Publisher publishes events on a Bus with the method set of
// events.Publisher and jetstream.Publisher (Publish, PublishAck,
// PublishAsync, PublishBatch, Flush, Close), so a service's code under test
// publishes with no server. Events are encoded exactly as jetstream.Publisher
// encodes them (marshaler.EventToNATS: the envelope's JSON, the ce-*
// headers, Nats-Msg-Id = event id so a retried publish is stored once),
// with the correlation and causation ids of the context. Every publish is
// stored before the call returns. Safe for concurrent use; it owns no
// goroutine.
type Publisher struct {
	b   *Bus
	m   *marshaler.Marshaler
	cfg PublisherConfig

	mu     sync.Mutex
	closed bool
}

// NewPublisher returns a Publisher on b (which it never closes).
func NewPublisher(b *Bus, cfg PublisherConfig) (*Publisher, error) {
	if b == nil {
		return nil, fmt.Errorf("memory publisher: %w: nil Bus", envelope.ErrInvalidConfig)
	}
	if cfg.Marshaler == nil {
		cfg.Marshaler = marshaler.Default()
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NewSlogLogger(nil)
	}
	if err := partition.Specs(cfg.Partitions).Validate(); err != nil {
		return nil, fmt.Errorf("memory publisher: %w", err)
	}
	return &Publisher{b: b, m: cfg.Marshaler, cfg: cfg}, nil
}

// Publish stores e on subject. Correlation and causation ids in ctx travel
// as headers. Options are jetstream.Publisher's (At, After, Cron, Every,
// InTimeZone, TTL, ExpectLastSequence), run by the bus on its clock: see
// the package doc. Errors: envelope.ErrInvalidSubject, envelope.ErrInvalidEvent or
// transport.ErrInvalidOption (nothing stored); transport.ErrPublish with transport.ErrNoStream,
// envelope.ErrTooLarge, transport.ErrClosed, transport.ErrSchedulesDisabled, transport.ErrTTLDisabled or a
// *transport.ConflictError (transport.ErrConflict). A duplicate (same event id inside
// the stream's window) is a success.
func (p *Publisher) Publish(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) error {
	_, err := p.PublishAck(ctx, subject, e, opts...)
	return err
}

// PublishAck is Publish returning the bus's ack (for a scheduled publish:
// of the stored schedule).
func (p *Publisher) PublishAck(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) (PubAck, error) {
	if p.isClosed() {
		return PubAck{}, closedErr(subject, e)
	}
	msg, err := p.encode(ctx, subject, e, opts)
	if err != nil {
		return PubAck{}, err
	}
	if err := ctx.Err(); err != nil {
		return PubAck{}, fmt.Errorf("publish %s event %s: %w: %w", subject, e.ID, transport.ErrPublish, err)
	}
	return p.b.publish(msg.Subject, msg.Header, msg.Data, msg.Header.Get(nats.MsgIdHdr), "")
}

// PublishAsync validates and encodes e and stores it. A nil return means
// queued, as for jetstream.Publisher: a failure to store (no stream, too
// large, bus closed) goes to OnAsyncError, which has run when PublishAsync
// returns. Validation errors are returned. It takes Publish's options.
func (p *Publisher) PublishAsync(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) error {
	if p.isClosed() {
		return closedErr(subject, e)
	}
	msg, err := p.encode(ctx, subject, e, opts)
	if err != nil {
		return err
	}
	if _, err := p.b.publish(msg.Subject, msg.Header, msg.Data, msg.Header.Get(nats.MsgIdHdr), ""); err != nil {
		ae := AsyncError{Subject: subject, EventID: e.ID, EventType: e.Type, Msg: msg, Err: err}
		if p.cfg.OnAsyncError != nil {
			p.cfg.OnAsyncError(ae)
		} else {
			p.cfg.Logger.Error("memory async publish failed", err, watermill.LogFields{"subject": subject, "event_id": e.ID, "event_type": e.Type})
		}
	}
	return nil
}

// PublishBatch validates every event first, against the envelope rules and
// the bus's MaxPayload (if any is invalid nothing is stored), then stores
// them in order. The error is a *BatchError with one
// entry per event (nil: stored) when any failed.
func (p *Publisher) PublishBatch(ctx context.Context, subject string, events ...*envelope.Event) error {
	if len(events) == 0 {
		return nil
	}
	if p.isClosed() {
		return closedErr(subject, events[0])
	}
	msgs := make([]*nats.Msg, len(events))
	errs := make([]error, len(events))
	invalid := false
	for i, e := range events {
		msgs[i], errs[i] = p.encode(ctx, subject, e, nil)
		invalid = invalid || errs[i] != nil
	}
	if invalid {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("publish %s event %s: %w: another event of the batch is invalid", subject, events[i].ID, transport.ErrNotSent)
			}
		}
		return &BatchError{Errs: errs}
	}
	failed := false
	for i, msg := range msgs {
		_, errs[i] = p.b.publish(subject, msg.Header, msg.Data, msg.Header.Get(nats.MsgIdHdr), "")
		failed = failed || errs[i] != nil
	}
	if failed {
		return &BatchError{Errs: errs}
	}
	return nil
}

// Flush returns nil: every publish is stored (or reported) before its call
// returns, so nothing is ever pending.
func (p *Publisher) Flush(context.Context) error { return nil }

// Close makes later publishes fail with transport.ErrClosed. It never closes the
// Bus. Idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func (p *Publisher) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// encode validates subject, event and options and builds the NATS message
// (marshaler.PublishMsg and transport.PublishOptions.Apply: the same bytes
// on every transport; After counts from the bus's clock), refusing one
// larger than the bus's MaxPayload before anything is stored, as
// jetstream.Publisher does for every path.
func (p *Publisher) encode(ctx context.Context, subject string, e *envelope.Event, opts []transport.PublishOption) (*nats.Msg, error) {
	limit := int64(p.b.MaxPayload())
	placed, header := partition.Specs(p.cfg.Partitions).Place(subject, e)
	msg, err := p.m.PublishMsg(ctx, placed, e, limit)
	if err != nil {
		return nil, err
	}
	if header != "" {
		msg.Header.Set(partition.Header, header)
		if err := marshaler.CheckMaxPayload(msg, limit); err != nil {
			return nil, fmt.Errorf("publish %s: event %s: %w", subject, e.ID, err)
		}
	}
	if len(opts) == 0 {
		return msg, nil
	}
	o, err := transport.ResolvePublishOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("publish %s event %s: %w", subject, e.ID, err)
	}
	o.Apply(msg, e.ID, p.b.now())
	if err := marshaler.CheckMaxPayload(msg, limit); err != nil {
		return nil, fmt.Errorf("publish %s: event %s: %w", subject, e.ID, err)
	}
	return msg, nil
}

func closedErr(subject string, e *envelope.Event) error {
	id := ""
	if e != nil {
		id = e.ID
	}
	return fmt.Errorf("publish %s event %s: %w", subject, id, transport.ErrClosed)
}

// BatchError reports the events of a batch that were not stored
// (transport.BatchError, as jetstream's publisher reports them).
type BatchError = transport.BatchError

var _ error = (*BatchError)(nil)
