package envelope

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Validate checks the event against the envelope's rules, with the default
// maximum encoded size (DefaultMaxSize). Every error matches ErrInvalidEvent and
// the sentinel of the rule that failed (ErrMissingID, ErrInvalidType, ...).
// The rules, in the order they are checked:
//   - ID, Type and Source are not empty (ErrMissingID, ErrMissingType,
//     ErrMissingSource);
//   - Type is [A-Za-z0-9_-]+ tokens joined by single dots (ErrInvalidType);
//   - Timestamp is not zero (ErrMissingTimestamp) and its year in UTC is
//     0000-9999, the range RFC 3339 can write (ErrInvalidTimestamp);
//   - SchemaVersion is MAJOR.MINOR (ErrInvalidSchemaVersion);
//   - ID, Source and OrganizationID are valid UTF-8 (ErrInvalidUTF8);
//   - Data is empty or one JSON value in valid UTF-8 (ErrDataNotJSON; also
//     ErrInvalidUTF8 for bad UTF-8), and NewEvent could encode its data;
//   - the encoding is at most the maximum size (ErrTooLarge).
func (e *Event) Validate() error { return e.ValidateSize(DefaultMaxSize) }

// ValidateSize is Validate with a given maximum encoded size in bytes; a
// maxSize <= 0 means no limit.
func (e *Event) ValidateSize(maxSize int) error {
	_, err := e.check(maxSize, false)
	return err
}

// Encode validates e as ValidateSize(maxSize) does and returns its JSON
// encoding (AppendJSON) in a buffer of exactly the right size.
func (e *Event) Encode(maxSize int) ([]byte, error) {
	n, err := e.check(maxSize, false)
	if err != nil {
		return nil, err
	}
	return e.AppendJSON(make([]byte, 0, n)), nil
}

// check applies the rules and returns the encoded length. decoded skips the
// UTF-8 checks and the data's JSON check when decodeEnvelope has just done
// them on the whole input (Decode), because they read every byte again.
func (e *Event) check(maxSize int, decoded bool) (int, error) {
	switch {
	case e.ID == "":
		return 0, invalid(ErrMissingID, "")
	case e.Type == "":
		return 0, invalid(ErrMissingType, "")
	case e.Source == "":
		return 0, invalid(ErrMissingSource, "")
	}
	if !validDotted(e.Type) {
		return 0, invalid(ErrInvalidType, "type %q", e.Type)
	}
	if e.Timestamp.IsZero() {
		return 0, invalid(ErrMissingTimestamp, "event %s", e.ID)
	}
	if y := e.Timestamp.UTC().Year(); y < 0 || y > 9999 {
		return 0, invalid(ErrInvalidTimestamp, "event %s: year %d", e.ID, y)
	}
	if _, ok := parseSchemaVersion(e.SchemaVersion); !ok {
		return 0, invalid(ErrInvalidSchemaVersion, "%q", e.SchemaVersion)
	}
	if !decoded {
		for _, s := range [...]string{e.ID, e.Source, e.OrganizationID} {
			if !utf8.ValidString(s) {
				return 0, invalid(ErrInvalidUTF8, "%q", s)
			}
		}
	}
	if e.dataErr != nil {
		return 0, fmt.Errorf("%w: %w: %w", ErrInvalidEvent, ErrDataNotJSON, e.dataErr)
	}
	if len(e.Data) > 0 && !decoded {
		if err := validJSON(e.Data); err != nil {
			return 0, fmt.Errorf("%w: %w: event %s: %w", ErrInvalidEvent, ErrDataNotJSON, e.ID, err)
		}
	}
	n := e.EncodedLen()
	if maxSize > 0 && n > maxSize {
		return 0, invalid(ErrTooLarge, "event %s encodes to %d bytes, max %d", e.ID, n, maxSize)
	}
	return n, nil
}

func invalid(rule error, format string, args ...any) error {
	if format == "" {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, rule)
	}
	return fmt.Errorf("%w: %w: %s", ErrInvalidEvent, rule, fmt.Sprintf(format, args...))
}

// ValidateSubject checks that subject is a concrete NATS subject this library
// publishes to: dot-separated tokens of [A-Za-z0-9_-], so no spaces, no empty
// token and no wildcard ('*', '>'). The error matches ErrInvalidSubject.
func ValidateSubject(subject string) error {
	if !validDotted(subject) {
		return fmt.Errorf("%w: %q must be dot-separated tokens of [A-Za-z0-9_-] (no spaces or wildcards)", ErrInvalidSubject, subject)
	}
	return nil
}

// ValidToken reports whether s is one token of a type or subject: [A-Za-z0-9_-]+.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			return false
		}
	}
	return true
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validDotted reports whether s is [A-Za-z0-9_-]+ tokens joined by single dots.
func validDotted(s string) bool {
	if s == "" {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if tokenLen == 0 {
				return false
			}
			tokenLen = 0
			continue
		}
		if !tokenByte(c) {
			return false
		}
		tokenLen++
	}
	return tokenLen > 0
}

// parseSchemaVersion parses MAJOR.MINOR (decimal, no sign, no leading zeros
// except "0", at most 9 digits each) and returns MAJOR.
func parseSchemaVersion(v string) (major int, ok bool) {
	dot := -1
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return 0, false
	}
	major, ok = parseUint(v[:dot])
	if !ok {
		return 0, false
	}
	if _, ok = parseUint(v[dot+1:]); !ok {
		return 0, false
	}
	return major, true
}

func parseUint(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ValidatePattern checks a subject filter: dot-separated tokens, each '*',
// or '>' as the last token, or [A-Za-z0-9_-]+ (the tokens ValidateSubject
// accepts). The error matches ErrInvalidSubject.
func ValidatePattern(pattern string) error {
	bad := func() error {
		return fmt.Errorf("%w: filter %q must be dot-separated tokens of [A-Za-z0-9_-], '*' (one token) or a final '>'", ErrInvalidSubject, pattern)
	}
	if pattern == "" {
		return bad()
	}
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
		switch {
		case t == "*":
		case t == ">" && i == len(toks)-1:
		case ValidToken(t):
		default:
			return bad()
		}
	}
	return nil
}
