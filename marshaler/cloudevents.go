package marshaler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/jetevents/events/envelope"
)

// isJSONContentType reports whether a datacontenttype describes JSON data;
// empty means JSON (the CloudEvents default for the JSON format).
func isJSONContentType(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "" || ct == ContentTypeJSON || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// attributes are the CloudEvents attributes an envelope is built from.
type attributes struct {
	specVersion, id, typ, source, time, org, schema string
}

// toEvent builds and checks an event from CloudEvents attributes. The
// envelope needs a timestamp, so time is required here although CloudEvents
// makes it optional; a missing schemaversion extension means "1.0".
func (m *Marshaler) toEvent(mode string, a attributes, data []byte) (*envelope.Event, error) {
	for _, r := range [...]struct{ name, v string }{
		{"specversion", a.specVersion}, {"id", a.id}, {"type", a.typ}, {"source", a.source}, {"time", a.time},
	} {
		if r.v == "" {
			return nil, fmt.Errorf("%w: CloudEvents %s mode without %s", ErrMissingAttribute, mode, r.name)
		}
	}
	if a.specVersion != SpecVersion {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedSpecVersion, a.specVersion)
	}
	t, err := envelope.ParseTime(a.time)
	if err != nil {
		return nil, fmt.Errorf("%w: CloudEvents %s mode: time %q: %w", envelope.ErrMalformed, mode, a.time, err)
	}
	if a.schema == "" {
		a.schema = envelope.DefaultSchemaVersion
	}
	e := &envelope.Event{
		ID: a.id, Type: a.typ, Source: a.source, OrganizationID: a.org,
		Timestamp: t, SchemaVersion: a.schema, Data: data,
	}
	if err := e.ValidateSize(m.cfg.MaxSize); err != nil {
		return nil, fmt.Errorf("CloudEvents %s mode: %w", mode, err)
	}
	return e, nil
}

// decodeBinary reads CloudEvents binary mode: attributes in ce-* headers, the
// payload is the data (JSON; an empty payload is an event without data).
func (m *Marshaler) decodeBinary(hd *headerData, data []byte) (*envelope.Event, error) {
	var raw []byte
	if len(trimJSONSpace(data)) > 0 {
		raw = data
	}
	return m.toEvent("binary", attributes{
		specVersion: hd.specVersion, id: hd.id, typ: hd.typ, source: hd.source,
		time: hd.time, org: hd.org, schema: hd.schema,
	}, raw)
}

// CloudEvents JSON-format keys read into the envelope or the relations; any
// other key is an extension (or dataschema/subject), carried as ce-<name>
// metadata.
var structuredKeys = map[string]bool{
	"specversion": true, "id": true, "type": true, "source": true, "time": true,
	"organizationid": true, "schemaversion": true, "correlationid": true, "causationid": true,
	"datacontenttype": true, "data": true, "data_base64": true,
}

// decodeStructured reads CloudEvents structured mode (application/cloudevents+json):
// one JSON object, keys exact and not repeated, attribute values strings (null
// reads as absent), extension values strings, numbers or booleans. The data
// is "data" or, when the datacontenttype is JSON (or absent), "data_base64"
// holding base64-encoded JSON; never both. Relations
// in the event override those of the headers; the ce-* attribute headers are
// ignored, as the structured mode prescribes.
func (m *Marshaler) decodeStructured(hd *headerData, data []byte) (*envelope.Event, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: %w: CloudEvents structured mode", envelope.ErrMalformed, envelope.ErrInvalidUTF8)
	}
	fields, err := readObject(data)
	if err != nil {
		return nil, fmt.Errorf("%w: CloudEvents structured mode: %w", envelope.ErrMalformed, err)
	}
	str := func(name string) (string, error) {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		if raw[0] != '"' {
			return "", fmt.Errorf("%w: CloudEvents structured mode: %q is not a string", envelope.ErrMalformed, name)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: CloudEvents structured mode: %q: %w", envelope.ErrMalformed, name, err)
		}
		return s, nil
	}
	var a attributes
	var ct, corr, cause string
	for _, f := range [...]struct {
		name string
		dst  *string
	}{
		{"specversion", &a.specVersion}, {"id", &a.id}, {"type", &a.typ}, {"source", &a.source},
		{"time", &a.time}, {"organizationid", &a.org}, {"schemaversion", &a.schema},
		{"datacontenttype", &ct}, {"correlationid", &corr}, {"causationid", &cause},
	} {
		if *f.dst, err = str(f.name); err != nil {
			return nil, err
		}
	}
	if !isJSONContentType(ct) {
		return nil, fmt.Errorf("%w: datacontenttype %q (data must be JSON)", ErrUnsupportedContentType, ct)
	}
	eventData := fields["data"]
	if raw, ok := fields["data_base64"]; ok && string(raw) != "null" {
		if eventData != nil && string(eventData) != "null" {
			return nil, fmt.Errorf("%w: CloudEvents structured mode: both data and data_base64", envelope.ErrMalformed)
		}
		if eventData, err = base64JSON(raw); err != nil {
			return nil, err
		}
	}
	for name, raw := range fields {
		if structuredKeys[name] {
			continue
		}
		if !validExtensionName(name) {
			return nil, fmt.Errorf("%w: CloudEvents structured mode: attribute name %q is not lowercase alphanumeric", envelope.ErrMalformed, name)
		}
		v, err := extensionValue(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: CloudEvents structured mode: attribute %q: %w", envelope.ErrMalformed, name, err)
		}
		if hd.extra == nil {
			hd.extra = make(map[string]string, 4)
		}
		hd.extra["ce-"+name] = v // the event's value wins over a ce-* header
	}
	e, err := m.toEvent("structured", a, eventData)
	if err != nil {
		return nil, err
	}
	if corr != "" {
		hd.rel.CorrelationID = corr
	}
	if cause != "" {
		hd.rel.CausationID = cause
	}
	return e, nil
}

// base64JSON decodes a data_base64 member whose datacontenttype says JSON
// (producers that encode every payload as base64 do this): the decoded
// bytes must be valid JSON, as the envelope carries JSON data only.
func base64JSON(raw json.RawMessage) (json.RawMessage, error) {
	var enc string
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("%w: CloudEvents structured mode: data_base64 is not a string", envelope.ErrMalformed)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: CloudEvents structured mode: data_base64: %w", envelope.ErrMalformed, err)
	}
	if len(trimJSONSpace(b)) == 0 {
		return nil, nil // an event without data
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: %w: CloudEvents structured mode: data_base64", envelope.ErrMalformed, envelope.ErrInvalidUTF8)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: CloudEvents structured mode: data_base64 does not hold JSON although datacontenttype says it does", envelope.ErrMalformed)
	}
	return b, nil
}

// readObject reads a JSON object into its members, refusing a repeated key
// (encoding/json would keep the last one silently) and anything after the
// object.
func readObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object")
	}
	fields := make(map[string]json.RawMessage, 12)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string) // Token enforces a string key here; checked anyway
		if !ok {
			return nil, fmt.Errorf("want an object key, got %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return fields, nil
}

// validExtensionName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits.
func validExtensionName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// extensionValue returns an extension attribute's value as text: a string as
// it is, a number or boolean as its JSON text. Objects and arrays are not
// CloudEvents attribute types.
func extensionValue(raw json.RawMessage) (string, error) {
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		return "", fmt.Errorf("an object or array is not an attribute value")
	default:
		return string(raw), nil
	}
}

// structuredAttributes are the CloudEvents JSON-format attributes written by
// EncodeStructured; the data is appended by hand so that its bytes stay as
// they are (encoding/json would compact and re-escape a RawMessage).
type structuredAttributes struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Type            string `json:"type"`
	Source          string `json:"source"`
	Time            string `json:"time"`
	OrganizationID  string `json:"organizationid,omitempty"`
	SchemaVersion   string `json:"schemaversion"`
	CorrelationID   string `json:"correlationid,omitempty"`
	CausationID     string `json:"causationid,omitempty"`
	DataContentType string `json:"datacontenttype"`
}

// EncodeStructured writes e as a CloudEvents structured-mode JSON document
// (Content-Type application/cloudevents+json), for consumers that want it;
// DecodeNATS reads it back. The event is validated first (errors match
// envelope.ErrInvalidEvent); relations that are not valid UTF-8 fail with
// ErrInvalidMetadata. The data's bytes are written unchanged.
func EncodeStructured(e *envelope.Event, rel Relations) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := rel.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(structuredAttributes{
		SpecVersion: SpecVersion, ID: e.ID, Type: e.Type, Source: e.Source,
		Time: envelope.FormatTime(e.Timestamp), OrganizationID: e.OrganizationID,
		SchemaVersion: e.SchemaVersion, DataContentType: ContentTypeJSON,
		CorrelationID: rel.CorrelationID, CausationID: rel.CausationID,
	}); err != nil {
		return nil, fmt.Errorf("encode structured event %s: %w", e.ID, err)
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	out = append(out[:len(out)-1], `,"data":`...) // drop the closing brace
	if data := trimJSONSpace(e.Data); len(data) > 0 {
		out = append(out, data...)
	} else {
		out = append(out, "null"...)
	}
	return append(out, '}'), nil
}
