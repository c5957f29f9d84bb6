package marshaler

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jetevents/events/envelope"
)

// isJSONContentType reports whether a datacontenttype describes JSON data;
// empty means JSON (the CloudEvents default for the JSON format).
func isJSONContentType(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "" || ct == ContentTypeJSON || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// fromAttributes builds and checks an event from CloudEvents attributes.
func (m *Marshaler) fromAttributes(mode, specVersion, id, typ, source, ts, org, schema string, data []byte) (*envelope.Event, error) {
	for _, a := range [...]struct{ name, v string }{{"specversion", specVersion}, {"id", id}, {"type", typ}, {"source", source}, {"time", ts}} {
		if a.v == "" {
			return nil, fmt.Errorf("%w: %w: CloudEvents %s mode without %s", ErrUnmarshal, ErrMissingAttribute, mode, a.name)
		}
	}
	if specVersion != SpecVersion {
		return nil, fmt.Errorf("%w: %w: %q", ErrUnmarshal, ErrUnsupportedSpecVersion, specVersion)
	}
	t, err := envelope.ParseTime(ts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: time %q: %w", ErrUnmarshal, ErrMalformed, ts, err)
	}
	if schema == "" {
		schema = envelope.DefaultSchemaVersion
	}
	e := &envelope.Event{
		ID: id, Type: typ, Source: source, OrganizationID: org,
		Timestamp: t, SchemaVersion: schema, Data: data,
	}
	if err := e.ValidateSize(m.cfg.MaxSize); err != nil {
		return nil, fmt.Errorf("%w: CloudEvents %s mode: %w", ErrUnmarshal, mode, err)
	}
	if err := m.checkMajor(e); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeBinary reads CloudEvents binary mode: attributes in ce-* headers, the
// payload is the data.
func (m *Marshaler) decodeBinary(hd headerData, data []byte) (*envelope.Event, error) {
	ct := hd.dataContentType
	if ct == "" {
		ct = hd.contentType
	}
	if !isJSONContentType(ct) {
		return nil, fmt.Errorf("%w: %w: %q (data must be JSON)", ErrUnmarshal, ErrUnsupportedContentType, ct)
	}
	var raw []byte
	if len(data) > 0 {
		raw = data
	}
	return m.fromAttributes("binary", hd.specVersion, hd.id, hd.typ, hd.source, hd.time, hd.org, hd.schema, raw)
}

// structuredEvent is the CloudEvents JSON format, with our extensions.
type structuredEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Time            string          `json:"time"`
	OrganizationID  string          `json:"organizationid"`
	SchemaVersion   string          `json:"schemaversion"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      *string         `json:"data_base64"`
	CorrelationID   string          `json:"correlationid"`
	CausationID     string          `json:"causationid"`
}

// decodeStructured reads CloudEvents structured mode (application/cloudevents+json).
// Correlation and causation in the event override those of the headers.
func (m *Marshaler) decodeStructured(data []byte, rel Relations) (*envelope.Event, Relations, error) {
	var s structuredEvent
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, rel, fmt.Errorf("%w: %w: CloudEvents structured mode: %w", ErrUnmarshal, ErrMalformed, err)
	}
	if s.DataBase64 != nil {
		return nil, rel, fmt.Errorf("%w: %w: data_base64 (data must be JSON)", ErrUnmarshal, ErrUnsupportedContentType)
	}
	if !isJSONContentType(s.DataContentType) {
		return nil, rel, fmt.Errorf("%w: %w: %q (data must be JSON)", ErrUnmarshal, ErrUnsupportedContentType, s.DataContentType)
	}
	e, err := m.fromAttributes("structured", s.SpecVersion, s.ID, s.Type, s.Source, s.Time, s.OrganizationID, s.SchemaVersion, s.Data)
	if err != nil {
		return nil, rel, err
	}
	if s.CorrelationID != "" {
		rel.CorrelationID = s.CorrelationID
	}
	if s.CausationID != "" {
		rel.CausationID = s.CausationID
	}
	return e, rel, nil
}

// EncodeStructured writes e as a CloudEvents structured-mode JSON document
// (Content-Type application/cloudevents+json), for consumers that want it.
func EncodeStructured(e *envelope.Event, rel Relations) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	s := structuredEvent{
		SpecVersion: SpecVersion, ID: e.ID, Type: e.Type, Source: e.Source,
		Time: envelope.FormatTime(e.Timestamp), OrganizationID: e.OrganizationID,
		SchemaVersion: e.SchemaVersion, DataContentType: ContentTypeJSON, Data: e.Data,
		CorrelationID: rel.CorrelationID, CausationID: rel.CausationID,
	}
	if len(s.Data) == 0 {
		s.Data = json.RawMessage("null")
	}
	return json.Marshal(s)
}
