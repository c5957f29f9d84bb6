package router

import (
	"context"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// CQRS on the router: Watermill's cqrs.EventBus publishes Go structs as
// envelopes (marshaler.CQRS) on subjects like auth.user.created, and typed
// handlers func(ctx, *T) error run in the router's groups with the whole
// stack (correlation, retry, dead letters, idempotency, user middleware)
// instead of a Watermill EventProcessor's bare router:
//
//	c := marshaler.CQRS{Marshaler: m} // m with Source "auth-service"
//	bus, err := router.NewEventBus(pub, router.EventBusConfig{Marshaler: c, SubjectPrefix: "auth"})
//	g := r.Group("welcome", router.EventSubject("auth", UserCreated{}))
//	router.HandleEvent(g, func(ctx context.Context, e *UserCreated) error {
//		return bus.Publish(ctx, &WelcomeSent{UserID: e.UserID}) // correlated with e
//	})
//
// pub is any Watermill publisher of events: jetstream.MessagePublisher in
// production, memory.MessagePublisher in tests. Importing Watermill's cqrs
// package costs about 100 KB of binary (its protobuf marshalers, mostly
// dropped by the linker; measured on examples/demo).

// EventBusConfig configures NewEventBus. Zero fields take the defaults.
type EventBusConfig struct {
	// Marshaler builds the envelopes (type from the struct's name or its
	// EventType method, source and organization from its Config, timestamp
	// from its Clock). Its Source is required. Its HandledMessage defaults
	// to HandledMessage, so an event published while handling another (in
	// a router handler or a Watermill CQRS processor) gets the correlation,
	// causation and organization of the event handled.
	Marshaler marshaler.CQRS
	// SubjectPrefix makes the subject of an event: SubjectPrefix + "." +
	// its event name ("auth" and UserCreated: auth.user.created). Default
	// "": the event name alone (user.created).
	SubjectPrefix string
	// GeneratePublishTopic, when set, replaces SubjectPrefix.
	GeneratePublishTopic cqrs.GenerateEventPublishTopicFn
	// OnPublish, when set, runs after the relations were stamped on the
	// message (marshaler.CQRS.Stamp); it may change the message further.
	OnPublish cqrs.OnEventSendFn
	// Logger is the bus's. Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c EventBusConfig) Validate() error {
	if c.Marshaler.Marshaler == nil {
		return fmt.Errorf("%w: EventBusConfig.Marshaler: marshaler.CQRS without a Marshaler", envelope.ErrInvalidConfig)
	}
	if c.Marshaler.Config().Source == "" {
		return fmt.Errorf("%w: EventBusConfig.Marshaler: Config.Source is required to build events", envelope.ErrInvalidConfig)
	}
	if c.SubjectPrefix != "" {
		if err := envelope.ValidateSubject(c.SubjectPrefix); err != nil {
			return fmt.Errorf("%w: EventBusConfig.SubjectPrefix: %w", envelope.ErrInvalidConfig, err)
		}
	}
	return nil
}

// NewEventBus returns Watermill's cqrs.EventBus publishing through pub with
// cfg: Publish(ctx, &UserCreated{...}) stores a full envelope on
// EventSubject(SubjectPrefix, event), with the correlation and causation ids
// of ctx (and, when ctx is a handler's, of the event handled). Errors match
// envelope.ErrInvalidConfig.
func NewEventBus(pub message.Publisher, cfg EventBusConfig) (*cqrs.EventBus, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: nil publisher for the event bus", envelope.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.Marshaler
	if c.HandledMessage == nil {
		c.HandledMessage = HandledMessage
	}
	topic := cfg.GeneratePublishTopic
	if topic == nil {
		prefix := cfg.SubjectPrefix
		topic = func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
			return subjectOf(prefix, p.EventName), nil
		}
	}
	onPublish := cfg.OnPublish
	bus, err := cqrs.NewEventBusWithConfig(pub, cqrs.EventBusConfig{
		GeneratePublishTopic: topic,
		OnPublish: func(p cqrs.OnEventSendParams) error {
			if err := c.Stamp(p.Message); err != nil {
				return err
			}
			if onPublish != nil {
				return onPublish(p)
			}
			return nil
		},
		Marshaler: c,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: event bus: %w", envelope.ErrInvalidConfig, err)
	}
	return bus, nil
}

// EventSubject is the subject NewEventBus publishes event on with prefix:
// prefix + "." + its event name (marshaler.EventTypeOf), or the name alone
// when prefix is "". Use it as a group's filter subject.
func EventSubject(prefix string, event any) string {
	return subjectOf(prefix, marshaler.EventTypeOf(event))
}

func subjectOf(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// HandledMessage returns the Watermill message of the event a router
// handler (or a Watermill CQRS processor's handler) is handling with ctx,
// or nil. It is marshaler.CQRS's HandledMessage for NewEventBus.
func HandledMessage(ctx context.Context) *message.Message {
	if d := transport.FromContext(ctx); d != nil {
		if c, _ := d.Value.(*carrier); c != nil && c.msg != nil {
			return c.msg
		}
	}
	return cqrs.OriginalMessageFromCtx(ctx)
}

// HandleEvent registers a CQRS-style typed handler on g: the events whose
// type is the event name of T (marshaler.EventTypeOf: UserCreated ->
// "user.created", or T's EventType method) are decoded into a new *T and
// passed to fn, with the group's whole stack around it. Data that does not
// decode into T is dead-lettered with reason "unmarshal". Inside fn,
// cqrs.OriginalMessageFromCtx(ctx) returns the event's message, as in a
// Watermill EventProcessor.
func HandleEvent[T any](g *Group, fn func(ctx context.Context, event *T) error, opts ...HandlerOption) *Group {
	if fn == nil {
		return g.On(marshaler.EventTypeOf(new(T)), nil, opts...) // reports the nil handler
	}
	return AddEventHandler(g, cqrs.NewEventHandler(marshaler.EventTypeOf(new(T)), fn), opts...)
}

// AddEventHandler registers a Watermill cqrs.EventHandler (made with
// cqrs.NewEventHandler, or written for an EventProcessor) on g for the
// events of h.NewEvent()'s event name: see HandleEvent. NewEvent must
// return a non-nil pointer; otherwise it is a configuration error (Err,
// Run).
func AddEventHandler(g *Group, h cqrs.EventHandler, opts ...HandlerOption) *Group {
	if h == nil {
		return g.fail(fmt.Errorf("%w: nil cqrs.EventHandler in group %s", envelope.ErrInvalidConfig, g.cfg.Durable))
	}
	sample := h.NewEvent()
	if v := reflect.ValueOf(sample); !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		return g.fail(fmt.Errorf("%w: handler %q: NewEvent must return a non-nil pointer, got %T", envelope.ErrInvalidConfig, h.HandlerName(), sample))
	}
	eventType := marshaler.EventTypeOf(sample)
	return g.On(eventType, func(ctx context.Context, e *envelope.Event) error {
		v := h.NewEvent()
		if err := e.DecodeData(v); err != nil {
			return middleware.DeadLetter(middleware.ReasonUnmarshal, fmt.Errorf("handler %q: decode %T: %w", h.HandlerName(), v, err))
		}
		if msg := HandledMessage(ctx); msg != nil {
			ctx = cqrs.CtxWithOriginalMessage(ctx, msg)
		}
		return h.Handle(ctx, v)
	}, opts...)
}

// fail records err as the group's registration error (the first one wins).
func (g *Group) fail(err error) *Group {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	if g.err == nil {
		g.err = err
	}
	return g
}
