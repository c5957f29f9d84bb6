package envelope

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Envelope keys, as bits of the set of keys already read.
const (
	seenID = 1 << iota
	seenType
	seenSource
	seenOrganization
	seenTimestamp
	seenSchemaVersion
	seenData
)

// decodeEnvelope reads the wire form into e in one pass. e.Data aliases b.
func decodeEnvelope(b []byte, e *Event) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: %w", ErrMalformed, ErrInvalidUTF8)
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		if _, err := skipValue(b, i, 0); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return fmt.Errorf("%w: the envelope is a JSON %s, want an object", ErrMalformed, kindOf(b[i]))
	}
	var (
		d    Event
		seen int
	)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return fmt.Errorf("%w: %w", ErrMalformed, &syntaxError{"want an object key", i})
			}
			kStart := i
			kEnd, escaped, err := scanString(b, i)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			key := b[kStart+1 : kEnd-1]
			if escaped {
				key = []byte(unquote(key))
			}
			i = skipSpace(b, kEnd)
			if i >= len(b) || b[i] != ':' {
				return fmt.Errorf("%w: %w", ErrMalformed, &syntaxError{"want ':' after object key", i})
			}
			i = skipSpace(b, i+1)

			var bit int
			var dst *string
			switch string(key) {
			case "id":
				bit, dst = seenID, &d.ID
			case "type":
				bit, dst = seenType, &d.Type
			case "source":
				bit, dst = seenSource, &d.Source
			case "organization_id":
				bit, dst = seenOrganization, &d.OrganizationID
			case "schema_version":
				bit, dst = seenSchemaVersion, &d.SchemaVersion
			case "timestamp":
				bit = seenTimestamp
			case "data":
				bit = seenData
			}
			if seen&bit != 0 {
				return fmt.Errorf("%w: key %q appears twice", ErrMalformed, key)
			}
			seen |= bit

			switch bit {
			case 0: // a key of a later version: skip its value
				i, err = skipValue(b, i, 0)
			case seenData:
				start := i
				if i, err = skipValue(b, i, 0); err == nil {
					d.Data = b[start:i:i]
				}
			case seenTimestamp:
				var s string
				if s, i, err = readString(b, i, key); err == nil && s != "" {
					if d.Timestamp, err = ParseTime(s); err != nil {
						return fmt.Errorf("%w: timestamp: %w", ErrMalformed, err)
					}
				}
			default:
				*dst, i, err = readString(b, i, key)
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}

			i = skipSpace(b, i)
			if i >= len(b) {
				return fmt.Errorf("%w: %w", ErrMalformed, &syntaxError{"unexpected end of input in object", i})
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return fmt.Errorf("%w: %w", ErrMalformed, &syntaxError{"want ',' or '}' in object", i})
			}
			i = skipSpace(b, i+1)
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return fmt.Errorf("%w: %w", ErrMalformed, &syntaxError{"data after the envelope", i})
	}
	*e = d
	return nil
}

// readString reads the JSON string (or null, read as "") at b[i], the value
// of key, and returns it with the offset past it.
func readString(b []byte, i int, key []byte) (string, int, error) {
	if i < len(b) && b[i] == 'n' {
		end, err := scanLiteral(b, i, "null")
		return "", end, err
	}
	if i >= len(b) || b[i] != '"' {
		if _, err := skipValue(b, i, 0); err != nil {
			return "", i, err
		}
		return "", i, fmt.Errorf("key %q is a JSON %s, want a string", key, kindOf(b[i]))
	}
	end, escaped, err := scanString(b, i)
	if err != nil {
		return "", end, err
	}
	q := b[i+1 : end-1]
	switch {
	case escaped:
		return unquote(q), end, nil
	case string(q) == DefaultSchemaVersion:
		return DefaultSchemaVersion, end, nil // the usual value, without an allocation
	default:
		return string(q), end, nil
	}
}

// kindOf names the JSON kind of the value starting with c (c starts a valid value).
func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// ParseTime parses an RFC 3339 timestamp in any zone and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
