package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

// Result label values of jetevents_events_published_total.
const (
	ResultOK             = "ok"
	ResultDuplicate      = "duplicate"
	ResultNoStream       = "no_stream"
	ResultTimeout        = "timeout"
	ResultTooLarge       = "too_large"
	ResultInvalid        = "invalid"
	ResultNotSent        = "not_sent"
	ResultClosed         = "closed"
	ResultTooManyPending = "too_many_pending"
	ResultError          = "error"
)

// PublishObserver is a jetstream.PublishObserver: pass it to
// jetstream.PublisherConfig.Observers. It counts every publish by subject and
// result, times the ones that reached the broker, and keeps
// jetevents_publish_pending for async and batch publishes.
func (m *Metrics) PublishObserver(ctx context.Context, info jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
	start := time.Now()
	pending := info.Mode != jetstream.ModeSync
	if pending {
		m.publishPending.Inc()
	}
	subject := m.subjects.value(info.Subject)
	var org string
	if m.cfg.OrganizationLabel {
		org = m.orgs.value(info.OrganizationID)
	}
	return ctx, func(res jetstream.PublishResult) {
		if pending {
			m.publishPending.Dec()
		}
		result := resultOf(res)
		if m.cfg.OrganizationLabel {
			m.published.WithLabelValues(subject, result, org).Inc()
		} else {
			m.published.WithLabelValues(subject, result).Inc()
		}
		switch result {
		case ResultInvalid, ResultNotSent, ResultClosed, ResultTooManyPending:
			// Refused before the broker saw it: no latency to speak of.
		default:
			m.publishSeconds.WithLabelValues(string(info.Mode)).Observe(time.Since(start).Seconds())
		}
	}
}

// resultOf names an outcome. A too-large event is refused by the encoder
// (matching ErrInvalidEvent too) or by the server: too_large either way.
func resultOf(res jetstream.PublishResult) string {
	err := res.Err
	switch {
	case err == nil && res.Duplicate:
		return ResultDuplicate
	case err == nil:
		return ResultOK
	case errors.Is(err, transport.ErrNotSent):
		return ResultNotSent
	case errors.Is(err, envelope.ErrTooLarge):
		return ResultTooLarge
	case errors.Is(err, envelope.ErrInvalidEvent), errors.Is(err, envelope.ErrInvalidSubject):
		return ResultInvalid
	case errors.Is(err, transport.ErrClosed):
		return ResultClosed
	case errors.Is(err, transport.ErrTooManyPending):
		return ResultTooManyPending
	case errors.Is(err, transport.ErrNoStream):
		return ResultNoStream
	case errors.Is(err, transport.ErrTimeout):
		return ResultTimeout
	}
	return ResultError
}
