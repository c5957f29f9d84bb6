package jetstream

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// PublishMode says which of the Publisher's paths an event took.
type PublishMode string

// Publish modes reported in PublishInfo.
const (
	// ModeSync: Publish / PublishAck (the outcome is known on return).
	ModeSync PublishMode = "sync"
	// ModeAsync: PublishAsync (the outcome comes with the ack, later).
	ModeAsync PublishMode = "async"
	// ModeBatch: PublishBatch and the Watermill MessagePublisher (pipelined).
	ModeBatch PublishMode = "batch"
)

// PublishInfo describes one event being published, for a PublishObserver.
type PublishInfo struct {
	// Subject the event is published on.
	Subject string
	// EventID, EventType and OrganizationID are the event's ("" when the
	// event is nil or, on the Watermill path, its metadata lacks them).
	EventID, EventType, OrganizationID string
	// Mode is the path the event takes.
	Mode PublishMode
}

// PublishResult is the outcome of one observed publish.
type PublishResult struct {
	// Err is nil when a stream stored the event (or already had it); else
	// the error the caller got (or OnAsyncError gets), with the sentinels of
	// this package (transport.ErrNoStream, transport.ErrTimeout, envelope.ErrTooLarge, transport.ErrClosed,
	// envelope.ErrInvalidEvent, transport.ErrTooManyPending, transport.ErrNotSent, ...).
	Err error
	// Duplicate is true when the stream already held the event.
	Duplicate bool
	// Stream and Sequence say where it was stored (empty on failure).
	Stream   string
	Sequence uint64
}

// PublishObserver is told about every event a Publisher (or its
// MessagePublisher) publishes: the hook for metrics and tracing
// (metrics.Metrics.PublishObserver, tracing.Tracer.PublishObserver).
//
// It is called on the caller's goroutine before the event is encoded, and the
// context it returns is the one the event is encoded with: a span started
// there travels as the traceparent header (see marshaler.RelationsFromContext).
// A nil context keeps the caller's. It returns the function the Publisher
// calls exactly once with the outcome (nil: not interested): at once for
// Publish and for a publish refused before it was sent, from the ack for
// PublishAsync and batches. That call may run on a nats.go goroutine that
// holds the publisher's locks: it must be fast and must not block nor
// publish.
type PublishObserver func(ctx context.Context, info PublishInfo) (context.Context, func(PublishResult))

// observe runs the configured observers, first to last, and returns the
// context to encode with and the function that reports the outcome to each
// of them, last to first. Without observers it returns ctx and nil, and costs
// nothing more.
func (p *Publisher) observe(ctx context.Context, info PublishInfo) (context.Context, func(PublishResult)) {
	obs := p.cfg.Observers
	if len(obs) == 1 {
		octx, done := obs[0](ctx, info)
		if octx == nil {
			octx = ctx
		}
		return octx, done
	}
	dones := make([]func(PublishResult), 0, len(obs))
	for _, o := range obs {
		octx, done := o(ctx, info)
		if octx != nil {
			ctx = octx
		}
		if done != nil {
			dones = append(dones, done)
		}
	}
	if len(dones) == 0 {
		return ctx, nil
	}
	return ctx, func(r PublishResult) {
		for i := len(dones) - 1; i >= 0; i-- {
			dones[i](r)
		}
	}
}

// observing reports whether any observer is configured.
func (p *Publisher) observing() bool { return len(p.cfg.Observers) > 0 }

// finish reports a failure to done, if any, and returns err.
func finish(done func(PublishResult), err error) error {
	if done != nil {
		done(PublishResult{Err: err})
	}
	return err
}

func eventInfo(subject string, e *envelope.Event, mode PublishMode) PublishInfo {
	info := PublishInfo{Subject: subject, Mode: mode}
	if e != nil {
		info.EventID, info.EventType, info.OrganizationID = e.ID, e.Type, e.OrganizationID
	}
	return info
}

func messageInfo(topic string, wm *message.Message) PublishInfo {
	info := PublishInfo{Subject: topic, Mode: ModeBatch}
	if wm != nil {
		info.EventID = wm.Metadata.Get(marshaler.MetadataID)
		if info.EventID == "" {
			info.EventID = wm.UUID
		}
		info.EventType = wm.Metadata.Get(marshaler.MetadataType)
		info.OrganizationID = wm.Metadata.Get(marshaler.MetadataOrganization)
	}
	return info
}
