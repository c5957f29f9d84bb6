package marshaler

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetevents/events/envelope"
)

// NATS adapts a Marshaler to watermill-nats' pkg/nats MarshalerUnmarshaler, so
// a watermill-nats publisher or subscriber can carry jetevents events.
// (*Marshaler implements the interface itself; NATS names the intent.)
type NATS struct{ *Marshaler }

var _ wmnats.MarshalerUnmarshaler = NATS{}

// W3C trace context headers of the wire contract, written when the publish
// context carries a valid OpenTelemetry span context (tracing is on).
const (
	// HeaderTraceParent is the W3C traceparent: version, trace id, parent
	// span id, flags ("00-<32 hex>-<16 hex>-<2 hex>").
	HeaderTraceParent = "traceparent"
	// HeaderTraceState is the W3C tracestate (vendor entries), sent only
	// when not empty.
	HeaderTraceState = "tracestate"
)

// Relations are the attributes of a publish that are not part of the envelope:
// which conversation the event belongs to, which event caused it, and the
// trace the publish belongs to.
type Relations struct {
	// CorrelationID travels as ce-correlationid; empty means not sent.
	CorrelationID string
	// CausationID travels as ce-causationid; empty means not sent.
	CausationID string
	// TraceParent and TraceState travel as the W3C traceparent and
	// tracestate headers; empty means not sent. They must be printable
	// ASCII (ErrInvalidMetadata otherwise).
	TraceParent, TraceState string
}

// RelationsFromContext returns the correlation and causation ids carried by
// ctx (see envelope.WithCorrelationID and envelope.WithCausationID) and, when
// ctx carries a valid OpenTelemetry span context (a span started by a
// tracer, or a remote context extracted on consume), its W3C trace context:
// this is where every publisher that encodes with EventToNATS or Marshal
// injects traceparent and tracestate. With no span in ctx (tracing off, the
// default) the trace fields stay empty and nothing more is sent.
func RelationsFromContext(ctx context.Context) Relations {
	rel := Relations{CorrelationID: envelope.CorrelationID(ctx), CausationID: envelope.CausationID(ctx)}
	rel.TraceParent, rel.TraceState = TraceContext(ctx)
	return rel
}

// TraceContext returns the W3C traceparent and tracestate of the span
// context ctx carries, formatted exactly as OpenTelemetry's TraceContext
// propagator writes them (only the sampled and random flags kept), or two
// empty strings when ctx has no valid span context.
func TraceContext(ctx context.Context) (traceparent, tracestate string) {
	if ctx == nil {
		return "", ""
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	flags := byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))
	var b [55]byte // "00-" 32 "-" 16 "-" 2
	n := copy(b[:], "00-")
	n += hex.Encode(b[n:], tid[:])
	b[n] = '-'
	n++
	n += hex.Encode(b[n:], sid[:])
	b[n] = '-'
	n++
	n += hex.Encode(b[n:], []byte{flags})
	return string(b[:n]), sc.TraceState().String()
}

func (r Relations) validate() error {
	if !utf8.ValidString(r.CorrelationID) || !utf8.ValidString(r.CausationID) {
		return fmt.Errorf("%w: correlation or causation id is not valid UTF-8", ErrInvalidMetadata)
	}
	if !traceValue(r.TraceParent) || !traceValue(r.TraceState) {
		return fmt.Errorf("%w: traceparent or tracestate is not printable ASCII", ErrInvalidMetadata)
	}
	return nil
}

// traceValue reports whether v can travel as a W3C trace header unchanged:
// printable ASCII (spaces and tabs inside tracestate's list are allowed,
// not around it).
func traceValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7F {
			return false
		}
	}
	return validHeaderValue(v)
}

// eventHeaderCount is the number of headers eventHeader writes at most.
const eventHeaderCount = 13

// eventHeader builds the wire contract's headers for e. All values share one
// backing array: one allocation instead of one per header. (The map is sized
// for these headers; it has room for a few more copied from metadata.)
func eventHeader(e *envelope.Event, rel Relations) nats.Header {
	vals := make([]string, 0, eventHeaderCount)
	h := make(nats.Header, eventHeaderCount)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	id := percentEncode(e.ID) // a UUID is returned as is
	// Nats-Msg-Id is percent-encoded too: an id is any string, and a CR or LF
	// would otherwise be rewritten by nats.go. The encoding is one-to-one, so
	// de-duplication is unchanged.
	set(HeaderMsgID, id)
	set(HeaderContentType, ContentTypeJSON)
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, id)
	set(HeaderType, e.Type) // tokens of [A-Za-z0-9_.-]: nothing to encode
	set(HeaderSource, percentEncode(e.Source))
	set(HeaderTime, envelope.FormatTime(e.Timestamp))
	set(HeaderSchemaVersion, e.SchemaVersion)
	if e.OrganizationID != "" {
		set(HeaderOrganization, percentEncode(e.OrganizationID))
	}
	if rel.CorrelationID != "" {
		set(HeaderCorrelationID, percentEncode(rel.CorrelationID))
	}
	if rel.CausationID != "" {
		set(HeaderCausationID, percentEncode(rel.CausationID))
	}
	if rel.TraceParent != "" {
		set(HeaderTraceParent, rel.TraceParent)
		if rel.TraceState != "" {
			set(HeaderTraceState, rel.TraceState)
		}
	}
	return h
}

// EventToNATS encodes a validated event straight into a NATS message on
// subject, in our content mode: payload = the envelope's JSON, headers as in
// the wire contract (ce-correlationid, ce-causationid, traceparent and
// tracestate from rel), Nats-Msg-Id = event id. It is the publisher's fast path
// (no Watermill message in between). The event is validated with
// Config.MaxSize first, and the whole message (payload and headers) must fit
// it too: errors match envelope.ErrInvalidEvent (envelope.ErrTooLarge for the size);
// relations that are not valid UTF-8 fail with ErrInvalidMetadata. The
// subject is not checked here (see envelope.ValidateSubject).
func (m *Marshaler) EventToNATS(subject string, e *envelope.Event, rel Relations) (*nats.Msg, error) {
	payload, err := e.Encode(m.cfg.MaxSize)
	if err != nil {
		return nil, err
	}
	if err := rel.validate(); err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	h := eventHeader(e, rel)
	if err := m.checkMessageSize(h, payload); err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return &nats.Msg{Subject: subject, Header: h, Data: payload}, nil
}

// checkMessageSize refuses a message whose payload and headers, as nats.go
// writes them, exceed Config.MaxSize: NATS' max_payload counts both, and a
// typed error here beats the server's refusal at publish time.
func (m *Marshaler) checkMessageSize(h nats.Header, payload []byte) error {
	if n := WireSize(h, payload); n > m.cfg.MaxSize {
		return fmt.Errorf("%w: %w: %d bytes with headers (payload %d), max %d", envelope.ErrInvalidEvent, envelope.ErrTooLarge, n, len(payload), m.cfg.MaxSize)
	}
	return nil
}

// Marshal implements watermill-nats' Marshaler: it turns a Watermill message
// whose payload is an envelope (as made by ToMessage, or received through
// Unmarshal) into a NATS message on topic.
//
// The payload is authoritative: it is decoded and validated (Config.MaxSize),
// and the ce-* attribute headers and Nats-Msg-Id are derived from it, so the
// headers can never disagree with the payload; the corresponding metadata keys
// are ignored. The correlation id is read from metadata correlation_id (else
// ce-correlationid), the causation id from ce-causationid, and either falls
// back to msg.Context() (RelationsFromContext). The W3C trace context comes
// from msg.Context() when it carries a valid span context, else from the
// traceparent / tracestate metadata. Process-local metadata (js-*
// delivery metadata and settlement marks, the dlq-reason/-subject/-error
// dead-letter marks) is not written: it describes this process's delivery,
// not the event. Other ce-* metadata (CloudEvents extensions) are written
// lowercase and percent-encoded; any other key is written as it is.
//
// Errors: a payload that is not a valid envelope fails with ErrNotAnEvent
// (wrapping the decode error); a message (payload and headers) larger than
// Config.MaxSize with envelope.ErrTooLarge; a metadata key that cannot be a NATS header
// name, a ce-* value that is not valid UTF-8, or a plain value that a NATS
// header would alter (CR, LF, NUL, leading or trailing blanks), fails with
// ErrInvalidMetadata.
func (m *Marshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	e, err := envelope.Decode(msg.Payload, m.cfg.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("marshal message %s: %w: %w", msg.UUID, ErrNotAnEvent, err)
	}
	rel := RelationsFromMessage(msg)
	ctxRel := RelationsFromContext(msg.Context())
	if rel.CorrelationID == "" {
		rel.CorrelationID = ctxRel.CorrelationID
	}
	if rel.CausationID == "" {
		rel.CausationID = ctxRel.CausationID
	}
	// The trace context of the publish (a producer span, or the handler's
	// span) wins over one the metadata carries (the trace of a received
	// message being forwarded), so that the next hop is a child of this one.
	rel.TraceParent, rel.TraceState = ctxRel.TraceParent, ctxRel.TraceState
	if rel.TraceParent == "" {
		rel.TraceParent, rel.TraceState = traceFromMetadata(msg.Metadata)
	}
	if err := rel.validate(); err != nil {
		return nil, fmt.Errorf("marshal message %s: %w", msg.UUID, err)
	}
	h := eventHeader(e, rel)
	for k, v := range msg.Metadata {
		if derivedMetadata(k) || localMark(k) {
			continue
		}
		if hasPrefixFold(k, "ce-") {
			lk := lowerASCII(k)
			if !validHeaderKey(lk) {
				return nil, fmt.Errorf("marshal message %s: %w: key %q", msg.UUID, ErrInvalidMetadata, k)
			}
			if _, dup := h[lk]; dup {
				return nil, fmt.Errorf("marshal message %s: %w: %q given twice (CloudEvents names are lowercase)", msg.UUID, ErrInvalidMetadata, lk)
			}
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("marshal message %s: %w: value of %q is not valid UTF-8", msg.UUID, ErrInvalidMetadata, k)
			}
			h[lk] = []string{percentEncode(v)}
			continue
		}
		if !validHeaderKey(k) {
			return nil, fmt.Errorf("marshal message %s: %w: key %q", msg.UUID, ErrInvalidMetadata, k)
		}
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("marshal message %s: %w: value of %q has CR, LF, NUL or surrounding blanks", msg.UUID, ErrInvalidMetadata, k)
		}
		h[k] = []string{v}
	}
	if err := m.checkMessageSize(h, msg.Payload); err != nil {
		return nil, fmt.Errorf("marshal message %s: %w", msg.UUID, err)
	}
	return &nats.Msg{Subject: topic, Header: h, Data: msg.Payload}, nil
}

// derivedHeaders are the header names whose values Marshal derives from the
// payload or the relations rather than copying them from metadata.
var derivedHeaders = [...]string{
	MetadataSpecVersion, MetadataID, MetadataType, MetadataSource, MetadataTime,
	MetadataOrganization, MetadataSchemaVersion, MetadataCausationID,
	HeaderCorrelationID, HeaderContentType, HeaderMsgID,
	HeaderTraceParent, HeaderTraceState,
}

// traceFromMetadata returns the traceparent and tracestate metadata (as
// DecodeNATS copies them from a received message's headers), their names
// matched in any ASCII case like the other derived headers; tracestate only
// goes with a traceparent.
func traceFromMetadata(md message.Metadata) (traceparent, tracestate string) {
	if traceparent = md.Get(HeaderTraceParent); traceparent != "" {
		return traceparent, md.Get(HeaderTraceState)
	}
	for k, v := range md {
		switch {
		case strings.EqualFold(k, HeaderTraceParent):
			traceparent = v
		case strings.EqualFold(k, HeaderTraceState):
			tracestate = v
		}
	}
	if traceparent == "" {
		return "", ""
	}
	return traceparent, tracestate
}

// derivedMetadata reports whether Marshal derives the header of metadata key
// k: correlation_id (a Watermill metadata key, matched exactly), or one of
// derivedHeaders in any ASCII case (the decoder reads those names
// case-insensitively, so another spelling would read back as a repeated
// header).
func derivedMetadata(k string) bool {
	if k == MetadataCorrelationID {
		return true
	}
	for _, d := range derivedHeaders {
		if len(k) == len(d) && strings.EqualFold(k, d) {
			return true
		}
	}
	return false
}

// Unmarshal implements watermill-nats' Unmarshaler: it decodes a NATS message
// in any of the three content modes into a Watermill message whose payload is
// the envelope's JSON. Errors match ErrUnmarshal (see DecodeNATS).
func (m *Marshaler) Unmarshal(msg *nats.Msg) (*message.Message, error) {
	wm, _, err := m.DecodeNATS(msg.Header, msg.Data)
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", msg.Subject, err)
	}
	return wm, nil
}

// PublishMsg validates subject (a concrete subject: ErrInvalidSubject) and
// e (nil or invalid: envelope.ErrInvalidEvent) and builds the NATS message a
// publisher sends, with the relations of ctx: what every publisher of the
// module (jetstream, memory) stores, by construction the same bytes. The
// message must also fit maxPayload, the broker's limit (a connection's
// MaxPayload; 0: none), checked by CheckMaxPayload: so a publisher's sync,
// async and batch paths refuse an oversized event the same way, before
// anything is sent.
func (m *Marshaler) PublishMsg(ctx context.Context, subject string, e *envelope.Event, maxPayload int64) (*nats.Msg, error) {
	if err := envelope.ValidateSubject(subject); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if e == nil {
		return nil, fmt.Errorf("publish %s: %w: nil event", subject, envelope.ErrInvalidEvent)
	}
	msg, err := m.EventToNATS(subject, e, RelationsFromContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	if err := CheckMaxPayload(msg, maxPayload); err != nil {
		return nil, fmt.Errorf("publish %s: event %s: %w", subject, e.ID, err)
	}
	return msg, nil
}
