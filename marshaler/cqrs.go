package marshaler

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
)

// CQRS implements watermill's cqrs.CommandEventMarshaler, so that commands
// and events sent through a cqrs.EventBus or cqrs.CommandBus travel as full
// envelopes, readable by every other consumer of the wire contract.
//
// Marshal(v) builds the envelope: type = Name(v), source and organization from
// the Marshaler's Config (Source is required), timestamp from Config.Clock, a
// fresh id, data = v's JSON.
//
// Marshal(v) has no context, so what lives in the context travels through the
// bus's hook instead. Watermill's EventBus attaches the publish context to the
// message before it calls EventBusConfig.OnPublish (CommandBus: OnSend), and
// its processors attach the handled message to the handler's context
// (cqrs.OriginalMessageFromCtx). Wire Stamp there:
//
//	c := marshaler.CQRS{Marshaler: m, HandledMessage: cqrs.OriginalMessageFromCtx}
//	bus, err := cqrs.NewEventBusWithConfig(pub, cqrs.EventBusConfig{
//		Marshaler: c,
//		OnPublish: func(p cqrs.OnEventSendParams) error { return c.Stamp(p.Message) },
//		GeneratePublishTopic: ...,
//	})
//
// Stamp sets, unless the message's metadata already holds a value:
//   - the correlation id: envelope.CorrelationID(ctx), else the handled
//     message's correlation id, else the handled event's id;
//   - the causation id: envelope.CausationID(ctx), else the handled event's id;
//   - the organization id: envelope.OrganizationID(ctx), else the handled
//     event's organization (rewriting the payload when it changes), else it
//     stays Config.OrganizationID.
//
// Without the hook, the NATS Marshal still reads envelope.WithCorrelationID /
// WithCausationID from the message's context when it publishes.
//
// The package does not import watermill's cqrs package, so that programs
// that do not use it do not link its protobuf dependencies; hence the
// HandledMessage field rather than a direct call.
type CQRS struct {
	*Marshaler

	// HandledMessage returns the message being handled, which a context
	// carries inside a CQRS handler; set it to cqrs.OriginalMessageFromCtx.
	// Default nil: Stamp then reads the envelope context values only.
	HandledMessage func(ctx context.Context) *message.Message
}

// EventTyper is implemented by a command or event that names its own type,
// overriding the default naming rule of Name. EventType is called on a zero
// value when a handler is registered, so it must not depend on field values.
type EventTyper interface {
	EventType() string
}

// Marshal builds the envelope of v (see CQRS) and returns it as ToMessage
// does. Errors match envelope.ErrInvalidConfig (no Marshaler) or envelope.ErrInvalidEvent
// with the rule's sentinel: ErrMissingType when v's type has no name (an
// anonymous struct: implement EventTyper), ErrMissingSource when Config.Source
// is empty, ErrDataNotJSON when v cannot be encoded.
func (c CQRS) Marshal(v any) (*message.Message, error) {
	if c.Marshaler == nil {
		return nil, fmt.Errorf("%w: CQRS without a Marshaler (use CQRS{Marshaler: m} with m from New)", envelope.ErrInvalidConfig)
	}
	cfg := c.cfg
	e, err := envelope.NewWithData(c.Name(v), cfg.Source, cfg.OrganizationID, cfg.Clock.Now(), v)
	if err != nil {
		return nil, fmt.Errorf("cqrs marshal %T: %w", v, err)
	}
	msg, err := c.ToMessage(e)
	if err != nil {
		return nil, fmt.Errorf("cqrs marshal %T (Config.Source %q): %w", v, cfg.Source, err)
	}
	return msg, nil
}

// Unmarshal decodes the envelope in msg (as FromMessage does: validated, schema
// major checked) and its data into v, a pointer. Errors match ErrUnmarshal and
// the cause (envelope.ErrDataDecode when the data does not fit v).
func (c CQRS) Unmarshal(msg *message.Message, v any) error {
	if c.Marshaler == nil {
		return fmt.Errorf("%w: CQRS without a Marshaler (use CQRS{Marshaler: m} with m from New)", envelope.ErrInvalidConfig)
	}
	e, err := c.FromMessage(msg)
	if err != nil {
		return err
	}
	if err := e.DecodeData(v); err != nil {
		return fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	return nil
}

// Name returns the event type of v: v.EventType() when v (or a pointer to its
// type) implements EventTyper, else the words of v's type name, lowercase,
// joined by dots: UserCreated -> "user.created", HTTPRequestFailed ->
// "http.request.failed", OrderV2Placed -> "order.v2.placed". Pointers are
// ignored, type arguments of a generic type dropped; an unnamed type gives "".
func (CQRS) Name(v any) string { return EventTypeOf(v) }

// NameFromMessage returns the event type of msg: its ce-type metadata, or the
// payload's type when the metadata is missing ("" when neither is readable).
func (c CQRS) NameFromMessage(msg *message.Message) string {
	if t := msg.Metadata.Get(MetadataType); t != "" {
		return t
	}
	if e, err := envelope.Decode(msg.Payload, 0); err == nil {
		return e.Type
	}
	return ""
}

// Stamp completes a message made by Marshal with the relations and the
// organization of its context (see CQRS for the rules and how to wire it as
// the bus's OnPublish or OnSend hook). Errors: ErrNotAnEvent when the payload
// is not an envelope, envelope.ErrInvalidEvent when the rewritten event
// breaks a rule.
func (c CQRS) Stamp(msg *message.Message) error {
	ctx := msg.Context()
	var handled Relations
	var handledID, handledOrg string
	var orig *message.Message
	if c.HandledMessage != nil {
		orig = c.HandledMessage(ctx)
	}
	if orig != nil {
		handled = RelationsFromMessage(orig)
		if handledID = orig.Metadata.Get(MetadataID); handledID == "" {
			handledID = orig.UUID
		}
		handledOrg = orig.Metadata.Get(MetadataOrganization)
	}
	rel := RelationsFromMessage(msg)
	rel.CorrelationID = firstNonEmpty(rel.CorrelationID, envelope.CorrelationID(ctx), handled.CorrelationID, handledID)
	rel.CausationID = firstNonEmpty(rel.CausationID, envelope.CausationID(ctx), handledID)
	SetRelations(msg, rel)

	org := firstNonEmpty(envelope.OrganizationID(ctx), handledOrg)
	if org == "" || org == msg.Metadata.Get(MetadataOrganization) {
		return nil
	}
	if c.Marshaler == nil {
		return fmt.Errorf("%w: CQRS without a Marshaler", envelope.ErrInvalidConfig)
	}
	e, err := envelope.Decode(msg.Payload, 0)
	if err != nil {
		return fmt.Errorf("cqrs stamp message %s: %w: %w", msg.UUID, ErrNotAnEvent, err)
	}
	e.OrganizationID = org
	if msg.Payload, err = e.Encode(c.cfg.MaxSize); err != nil {
		return fmt.Errorf("cqrs stamp message %s: %w", msg.UUID, err)
	}
	msg.Metadata.Set(MetadataOrganization, org)
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// EventTypeOf is the naming rule of CQRS.Name, for callers that need a type's
// event type without a CQRS (to subscribe to it, for instance).
func EventTypeOf(v any) string {
	if et, ok := v.(EventTyper); ok {
		if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || !rv.IsNil() {
			return et.EventType()
		}
	}
	t := reflect.TypeOf(v)
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A value T whose EventType has a pointer receiver, or a nil *T.
	if et, ok := reflect.New(t).Interface().(EventTyper); ok {
		return et.EventType()
	}
	return dottedName(t.Name())
}

// dottedName splits a Go type name into words (at a lower-to-upper or
// digit-to-upper change, before the last capital of an acronym followed by a
// lowercase letter, and at underscores) and joins them lowercase with dots.
func dottedName(name string) string {
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	rs := []rune(name)
	var b strings.Builder
	b.Grow(len(name) + 4)
	word := false // a word has been started and not yet ended by a dot
	for i, r := range rs {
		if r == '_' {
			if word {
				b.WriteByte('.')
				word = false
			}
			continue
		}
		if unicode.IsUpper(r) && i > 0 && word {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || unicode.IsUpper(prev) && nextLower {
				b.WriteByte('.')
			}
		}
		b.WriteRune(unicode.ToLower(r))
		word = true
	}
	return strings.TrimSuffix(b.String(), ".")
}
