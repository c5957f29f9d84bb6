package marshaler

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
)

// NATS adapts a Marshaler to watermill-nats' pkg/nats MarshalerUnmarshaler, so
// a watermill-nats publisher or subscriber can carry jetevents events.
// (*Marshaler implements the interface itself; NATS names the intent.)
type NATS struct{ *Marshaler }

var _ wmnats.MarshalerUnmarshaler = NATS{}

// Relations are the attributes of a publish that are not part of the envelope:
// which conversation the event belongs to and which event caused it.
type Relations struct {
	// CorrelationID travels as ce-correlationid; empty means not sent.
	CorrelationID string
	// CausationID travels as ce-causationid; empty means not sent.
	CausationID string
}

// RelationsFromContext returns the correlation and causation ids carried by
// ctx (see envelope.WithCorrelationID and envelope.WithCausationID).
func RelationsFromContext(ctx context.Context) Relations {
	return Relations{CorrelationID: envelope.CorrelationID(ctx), CausationID: envelope.CausationID(ctx)}
}

func (r Relations) validate() error {
	if !utf8.ValidString(r.CorrelationID) || !utf8.ValidString(r.CausationID) {
		return fmt.Errorf("%w: correlation or causation id is not valid UTF-8", ErrInvalidMetadata)
	}
	return nil
}

// eventHeaderCount is the number of headers eventHeader writes at most.
const eventHeaderCount = 11

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
	return h
}

// EventToNATS encodes a validated event straight into a NATS message on
// subject, in our content mode: payload = the envelope's JSON, headers as in
// the wire contract, Nats-Msg-Id = event id. It is the publisher's fast path
// (no Watermill message in between). The event is validated with
// Config.MaxSize first, and the whole message (payload and headers) must fit
// it too: errors match envelope.ErrInvalidEvent (ErrTooLarge for the size);
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
	const frame = len("NATS/1.0\r\n") + len("\r\n")
	n := len(payload) + frame
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	if n > m.cfg.MaxSize {
		return fmt.Errorf("%w: %w: %d bytes with headers (payload %d), max %d", ErrInvalidEvent, ErrTooLarge, n, len(payload), m.cfg.MaxSize)
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
// back to msg.Context() (RelationsFromContext). Process-local metadata (js-*
// delivery metadata and settlement marks, the dlq-reason/-subject/-error
// dead-letter marks) is not written: it describes this process's delivery,
// not the event. Other ce-* metadata (CloudEvents extensions) are written
// lowercase and percent-encoded; any other key is written as it is.
//
// Errors: a payload that is not a valid envelope fails with ErrNotAnEvent
// (wrapping the decode error); a message (payload and headers) larger than
// Config.MaxSize with ErrTooLarge; a metadata key that cannot be a NATS header
// name, a ce-* value that is not valid UTF-8, or a plain value that a NATS
// header would alter (CR, LF, NUL, leading or trailing blanks), fails with
// ErrInvalidMetadata.
func (m *Marshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	e, err := envelope.Decode(msg.Payload, m.cfg.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("marshal message %s: %w: %w", msg.UUID, ErrNotAnEvent, err)
	}
	rel := RelationsFromMessage(msg)
	if rel.CorrelationID == "" || rel.CausationID == "" {
		ctxRel := RelationsFromContext(msg.Context())
		if rel.CorrelationID == "" {
			rel.CorrelationID = ctxRel.CorrelationID
		}
		if rel.CausationID == "" {
			rel.CausationID = ctxRel.CausationID
		}
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
