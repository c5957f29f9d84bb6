package envelope

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// The envelope is encoded by hand rather than through encoding/json's reflection:
// publishing encodes every event, and this keeps that to one allocation with the
// key order of the wire contract fixed by construction.

// MarshalJSON encodes the event exactly as the wire contract shows. It fails with
// ErrDataNotJSON if Data is not valid JSON; it does not apply the other rules of
// Validate.
func (e *Event) MarshalJSON() ([]byte, error) {
	if e.dataErr != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrInvalidEvent, ErrDataNotJSON, e.dataErr)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return nil, invalid(ErrDataNotJSON, "event %s", e.ID)
	}
	return e.AppendJSON(make([]byte, 0, e.EncodedLen())), nil
}

// AppendJSON appends the event's JSON encoding to dst. It trusts Data to be
// valid JSON: call it on validated events only (MarshalJSON checks).
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = append(dst, `,"organization_id":`...)
	dst = appendString(dst, e.OrganizationID)
	dst = append(dst, `,"timestamp":"`...)
	dst = e.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","schema_version":`...)
	dst = appendString(dst, e.SchemaVersion)
	dst = append(dst, `,"data":`...)
	if len(e.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

// envelopeOverhead is the length of the keys and punctuation of AppendJSON.
const envelopeOverhead = len(`{"id":,"type":,"source":,"organization_id":,"timestamp":"","schema_version":,"data":}`)

// EncodedLen returns the length of the event's JSON encoding without encoding it.
func (e *Event) EncodedLen() int {
	n := envelopeOverhead
	n += stringLen(e.ID) + stringLen(e.Type) + stringLen(e.Source) + stringLen(e.OrganizationID) + stringLen(e.SchemaVersion)
	var ts [64]byte
	n += len(e.Timestamp.UTC().AppendFormat(ts[:0], time.RFC3339Nano))
	if len(e.Data) == 0 {
		n += len("null")
	} else {
		n += len(e.Data)
	}
	return n
}

// FormatTime formats t as the envelope does: RFC 3339 in UTC, with fractional
// seconds only when there are any ("2024-01-15T10:30:45Z").
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime parses an RFC 3339 timestamp in any zone and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// wireEvent is the decoding shape; strings stay strings so that a key of the
// wrong JSON type is an error, not a silent zero.
type wireEvent struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Source         string          `json:"source"`
	OrganizationID string          `json:"organization_id"`
	Timestamp      string          `json:"timestamp"`
	SchemaVersion  string          `json:"schema_version"`
	Data           json.RawMessage `json:"data"`
}

// UnmarshalJSON decodes the wire form. Malformed input (not a JSON object, a key
// of the wrong JSON type, an unparsable timestamp) fails with ErrMalformed; it
// does not apply Validate's rules, so a decoded event may still be invalid.
// A null data decodes as the raw bytes "null", so that re-encoding is exact.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var ts time.Time
	if w.Timestamp != "" {
		t, err := ParseTime(w.Timestamp)
		if err != nil {
			return fmt.Errorf("%w: timestamp: %w", ErrMalformed, err)
		}
		ts = t
	}
	*e = Event{
		ID:             w.ID,
		Type:           w.Type,
		Source:         w.Source,
		OrganizationID: w.OrganizationID,
		Timestamp:      ts,
		SchemaVersion:  w.SchemaVersion,
		Data:           w.Data,
	}
	return nil
}

// Decode parses the wire form and validates the result with maxSize (<= 0: no
// limit). Errors match ErrMalformed or ErrInvalidEvent.
func Decode(b []byte, maxSize int) (*Event, error) {
	if maxSize > 0 && len(b) > maxSize {
		return nil, invalid(ErrTooLarge, "%d bytes, max %d", len(b), maxSize)
	}
	e := new(Event)
	if err := e.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	if err := e.ValidateSize(0); err != nil {
		return nil, err
	}
	return e, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does minus
// the HTML escapes; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// stringLen returns len(appendString(nil, s)) without building it.
func stringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
