package marshaler

import (
	"context"
	"fmt"
	"strings"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
)

// NATS adapts a Marshaler to watermill-nats' pkg/nats MarshalerUnmarshaler, so
// a watermill-nats publisher or subscriber can carry jetevents events.
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

// eventHeaderCount is the number of headers EventToNATS writes at most.
const eventHeaderCount = 11

// EventToNATS encodes a validated event straight into a NATS message on
// subject, in our content mode: payload = the envelope's JSON, headers as in
// the wire contract, Nats-Msg-Id = event id. It is the publisher's fast path
// (no Watermill message in between). Errors match envelope.ErrInvalidEvent.
func (m *Marshaler) EventToNATS(subject string, e *envelope.Event, rel Relations) (*nats.Msg, error) {
	if err := e.ValidateSize(m.cfg.MaxSize); err != nil {
		return nil, err
	}
	// One backing array for all header values: one allocation instead of one
	// per header.
	vals := make([]string, 0, eventHeaderCount)
	h := make(nats.Header, eventHeaderCount)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderMsgID, e.ID)
	set(HeaderContentType, ContentTypeJSON)
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, percentEncode(e.ID))
	set(HeaderType, e.Type)
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
	return &nats.Msg{
		Subject: subject,
		Header:  h,
		Data:    e.AppendJSON(make([]byte, 0, e.EncodedLen())),
	}, nil
}

// Marshal implements watermill-nats' Marshaler: it turns a Watermill message
// made by ToMessage (or received by Unmarshal) into a NATS message on topic.
// Metadata becomes headers: the ce-* attributes percent-encoded, correlation_id
// as ce-correlationid, other keys as they are; Nats-Msg-Id is the event id.
// A message without the event metadata fails with ErrNotAnEvent.
func (m *Marshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	id := msg.Metadata.Get(MetadataID)
	for _, k := range [...]string{MetadataID, MetadataType, MetadataSource, MetadataTime} {
		if msg.Metadata.Get(k) == "" {
			return nil, fmt.Errorf("marshal message %s: %w: no %s metadata (build it with ToMessage)", msg.UUID, ErrNotAnEvent, k)
		}
	}
	if len(msg.Payload) > m.cfg.MaxSize {
		return nil, fmt.Errorf("marshal message %s: %w: %d bytes, max %d", msg.UUID, ErrTooLarge, len(msg.Payload), m.cfg.MaxSize)
	}
	h := make(nats.Header, len(msg.Metadata)+2)
	for k, v := range msg.Metadata {
		switch {
		case k == MetadataCorrelationID:
			k, v = HeaderCorrelationID, percentEncode(v)
		case strings.HasPrefix(k, "ce-"):
			v = percentEncode(v)
		case k == "" || !validHeaderText(k) || strings.ContainsAny(k, ": ") || !validHeaderText(v):
			return nil, fmt.Errorf("marshal message %s: %w: %q", msg.UUID, ErrInvalidMetadata, k)
		}
		h[k] = []string{v}
	}
	h[HeaderMsgID] = []string{id}
	if h.Get(HeaderContentType) == "" {
		h[HeaderContentType] = []string{ContentTypeJSON}
	}
	h[HeaderSpecVersion] = []string{SpecVersion}
	return &nats.Msg{Subject: topic, Header: h, Data: msg.Payload}, nil
}

// Unmarshal implements watermill-nats' Unmarshaler: it decodes a NATS message
// in any of the three content modes into a Watermill message whose payload is
// the envelope's JSON. Errors match ErrUnmarshal.
func (m *Marshaler) Unmarshal(msg *nats.Msg) (*message.Message, error) {
	wm, _, err := m.DecodeNATS(msg.Header, msg.Data)
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", msg.Subject, err)
	}
	return wm, nil
}

// DecodeNATS decodes NATS headers and payload into a Watermill message and the
// event it carries. Errors match ErrUnmarshal and a specific sentinel.
func (m *Marshaler) DecodeNATS(h nats.Header, data []byte) (*message.Message, *envelope.Event, error) {
	if len(data) > m.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%w: %w: payload of %d bytes, max %d", ErrUnmarshal, ErrTooLarge, len(data), m.cfg.MaxSize)
	}
	hd, err := readHeaders(h)
	if err != nil {
		return nil, nil, err
	}
	var (
		e       *envelope.Event
		payload []byte
	)
	switch {
	case hd.contentType == ContentTypeCloudEvent:
		e, hd.rel, err = m.decodeStructured(data, hd.rel)
	case hd.specVersion != "" && !isEnvelope(data):
		e, err = m.decodeBinary(hd, data)
	default:
		e, err = m.decodeEnvelope(data)
		if err == nil {
			err = hd.checkAgainst(e)
		}
		payload = data
	}
	if err != nil {
		return nil, nil, err
	}
	if payload == nil {
		payload = e.AppendJSON(make([]byte, 0, e.EncodedLen()))
	}
	wm := message.NewMessage(e.ID, payload)
	for k, v := range hd.extra {
		wm.Metadata[k] = v
	}
	setEventMetadata(wm.Metadata, e)
	if hd.rel.CorrelationID != "" {
		wm.Metadata[MetadataCorrelationID] = hd.rel.CorrelationID
	}
	if hd.rel.CausationID != "" {
		wm.Metadata[MetadataCausationID] = hd.rel.CausationID
	}
	return wm, e, nil
}

// isEnvelope reports whether data starts as our encoder writes every envelope.
// It tells our content mode from CloudEvents binary mode when ce-* headers are
// present, without decoding twice.
func isEnvelope(data []byte) bool {
	return strings.HasPrefix(string(data), `{"id":`)
}

// headerData is what readHeaders extracts in one pass over the headers.
type headerData struct {
	specVersion, id, typ, source, time, org, schema, dataContentType string
	contentType                                                      string
	rel                                                              Relations
	extra                                                            map[string]string
}

// readHeaders reads every header once: the ce-* attributes (percent-decoded)
// and Content-Type into fields, other headers (except Nats-*, which belong to
// the transport) into extra. A repeated header that differs is an error.
func readHeaders(h nats.Header) (headerData, error) {
	var hd headerData
	for k, vs := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "nats-") {
			continue
		}
		if len(vs) == 0 {
			continue
		}
		for _, v := range vs[1:] {
			if v != vs[0] {
				return hd, fmt.Errorf("%w: %w: %q has %d values", ErrUnmarshal, ErrRepeatedHeader, k, len(vs))
			}
		}
		v := vs[0]
		if lk == "content-type" {
			ct, _, _ := strings.Cut(v, ";")
			hd.contentType = strings.ToLower(strings.TrimSpace(ct))
			continue
		}
		if !strings.HasPrefix(lk, "ce-") {
			if hd.extra == nil {
				hd.extra = make(map[string]string)
			}
			hd.extra[k] = v
			continue
		}
		dv, ok := percentDecode(v)
		if !ok {
			return hd, fmt.Errorf("%w: %w: %s", ErrUnmarshal, ErrInvalidHeaderValue, k)
		}
		switch lk {
		case HeaderSpecVersion:
			hd.specVersion = dv
		case HeaderID:
			hd.id = dv
		case HeaderType:
			hd.typ = dv
		case HeaderSource:
			hd.source = dv
		case HeaderTime:
			hd.time = dv
		case HeaderOrganization:
			hd.org = dv
		case HeaderSchemaVersion:
			hd.schema = dv
		case HeaderCorrelationID:
			hd.rel.CorrelationID = dv
		case HeaderCausationID:
			hd.rel.CausationID = dv
		case HeaderDataCType:
			hd.dataContentType = dv
		default:
			if hd.extra == nil {
				hd.extra = make(map[string]string)
			}
			hd.extra[lk] = dv
		}
	}
	return hd, nil
}

// checkAgainst refuses an envelope whose headers name another event: routing
// and filtering read headers, the handler reads the payload, and they must agree.
func (hd headerData) checkAgainst(e *envelope.Event) error {
	if hd.id != "" && hd.id != e.ID {
		return fmt.Errorf("%w: %w: ce-id %q, payload id %q", ErrUnmarshal, ErrHeaderMismatch, hd.id, e.ID)
	}
	if hd.typ != "" && hd.typ != e.Type {
		return fmt.Errorf("%w: %w: ce-type %q, payload type %q", ErrUnmarshal, ErrHeaderMismatch, hd.typ, e.Type)
	}
	return nil
}

// RelationsFromContext returns the correlation and causation ids carried by
// ctx (see envelope.WithCorrelationID and envelope.WithCausationID).
func RelationsFromContext(ctx context.Context) Relations {
	return Relations{CorrelationID: envelope.CorrelationID(ctx), CausationID: envelope.CausationID(ctx)}
}
