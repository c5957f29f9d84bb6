package router

import (
	"context"
	"fmt"
	"slices"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
)

// HandlerFunc handles one event. Its context carries the correlation and
// causation ids (envelope.CorrelationID, envelope.CausationID), so events
// published with it continue the conversation.
//
// Return nil to ack. Return an error to have the broker redeliver the event
// later (NakWithDelay on the backoff schedule) until MaxDeliver, after which
// it is dead-lettered. Wrap the error with events.Permanent to dead-letter at
// once. A panic is recovered and treated as an error.
type HandlerFunc func(ctx context.Context, e *envelope.Event) error

// HandlerOption configures one handler registered with On or Handle.
type HandlerOption func(*handlerSpec)

// AcceptMajors declares the schema_version majors the handler accepts.
// Default: 1 only. An event of another major is dead-lettered with reason
// "schema_version" without calling the handler.
func AcceptMajors(majors ...int) HandlerOption {
	return func(h *handlerSpec) { h.majors = append([]int(nil), majors...) }
}

// handlerSpec is one registered handler of a group.
type handlerSpec struct {
	eventType string
	fn        HandlerFunc
	majors    []int
}

func (h *handlerSpec) accepts(major int) bool { return slices.Contains(h.majors, major) }

// Handle registers a typed handler on g: the event's data is decoded into a T
// (numbers stay numbers: ints decode exactly) before fn is called. Data that
// does not decode into T is dead-lettered with reason "unmarshal": retrying
// cannot fix it.
func Handle[T any](g *Group, eventType string, fn func(ctx context.Context, e *envelope.Event, data T) error, opts ...HandlerOption) *Group {
	if fn == nil {
		return g.On(eventType, nil, opts...) // reports the nil handler
	}
	return g.On(eventType, func(ctx context.Context, e *envelope.Event) error {
		var data T
		if err := e.DecodeData(&data); err != nil {
			return middleware.DeadLetter(middleware.ReasonUnmarshal, fmt.Errorf("decode %T: %w", data, err))
		}
		return fn(ctx, e, data)
	}, opts...)
}
