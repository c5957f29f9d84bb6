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
// Validate. It has a value receiver so that json.Marshal of an Event value, not
// only of a pointer, writes the wire form (note that json.Marshal then
// re-escapes <, > and & in the data; Encode does not).
func (e Event) MarshalJSON() ([]byte, error) {
	if e.dataErr != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrInvalidEvent, ErrDataNotJSON, e.dataErr)
	}
	if len(e.Data) > 0 {
		if err := validJSON(e.Data); err != nil {
			return nil, fmt.Errorf("%w: %w: event %s: %w", ErrInvalidEvent, ErrDataNotJSON, e.ID, err)
		}
	}
	return e.AppendJSON(make([]byte, 0, e.EncodedLen())), nil
}

// AppendJSON appends the event's JSON encoding to dst. It trusts Data to be
// valid JSON: call it on validated events only (MarshalJSON and Encode check).
// Whitespace around the data is dropped (whitespace inside is kept), so that
// decoding and re-encoding an encoded event reproduces it byte for byte.
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
	if data := trimSpace(e.Data); len(data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// trimSpace drops the JSON whitespace around b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// envelopeOverhead is the length of the keys and punctuation of AppendJSON.
const envelopeOverhead = len(`{"id":,"type":,"source":,"organization_id":,"timestamp":"","schema_version":,"data":}`)

// EncodedLen returns the length of the event's JSON encoding without encoding it.
func (e *Event) EncodedLen() int {
	n := envelopeOverhead
	n += stringLen(e.ID) + stringLen(e.Type) + stringLen(e.Source) + stringLen(e.OrganizationID) + stringLen(e.SchemaVersion)
	var ts [64]byte
	n += len(e.Timestamp.UTC().AppendFormat(ts[:0], time.RFC3339Nano))
	if data := trimSpace(e.Data); len(data) == 0 {
		n += len("null")
	} else {
		n += len(data)
	}
	return n
}

// FormatTime formats t as the envelope does: RFC 3339 in UTC, with fractional
// seconds only when there are any ("2024-01-15T10:30:45Z").
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// UnmarshalJSON decodes the wire form strictly: b must be one JSON object in
// valid UTF-8, its keys matched exactly (case-sensitive) and none repeated,
// the attribute keys JSON strings (null reads as absent) and timestamp RFC
// 3339. Unknown keys are skipped, so that a producer may add one. Failures
// match ErrMalformed (and ErrInvalidUTF8 for bad UTF-8). UnmarshalJSON does
// not apply Validate's rules, so a decoded event may still be invalid. Data
// keeps the received bytes (a copy), so re-encoding reproduces them exactly;
// a null data decodes as the bytes "null".
func (e *Event) UnmarshalJSON(b []byte) error {
	var d Event
	if err := decodeEnvelope(b, &d); err != nil {
		return err
	}
	if d.Data != nil {
		d.Data = append(json.RawMessage(nil), d.Data...)
	}
	*e = d
	return nil
}

// Decode parses the wire form (as UnmarshalJSON does) and validates the result
// against every rule of ValidateSize(maxSize) (maxSize <= 0: no limit). Input
// longer than maxSize is refused before it is parsed. Errors match
// ErrMalformed or ErrInvalidEvent (each with its specific sentinel).
//
// The returned event's Data aliases b rather than copying it (this is the
// decode path of every received message): do not modify b while the event is
// in use.
func Decode(b []byte, maxSize int) (*Event, error) {
	if maxSize > 0 && len(b) > maxSize {
		return nil, invalid(ErrTooLarge, "%d bytes, max %d", len(b), maxSize)
	}
	e := new(Event)
	if err := decodeEnvelope(b, e); err != nil {
		return nil, err
	}
	// decodeEnvelope has checked the input's UTF-8 and the data's syntax.
	if _, err := e.check(maxSize, true); err != nil {
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
