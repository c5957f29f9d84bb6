package marshaler

import (
	"strings"
	"unicode/utf8"
)

// NATS header names of the wire contract. CloudEvents attribute names are
// lowercase alphanumeric, so the extensions are ce-organizationid, not
// ce-organization_id.
const (
	HeaderMsgID         = "Nats-Msg-Id"
	HeaderContentType   = "Content-Type"
	HeaderSpecVersion   = "ce-specversion"
	HeaderID            = "ce-id"
	HeaderType          = "ce-type"
	HeaderSource        = "ce-source"
	HeaderTime          = "ce-time"
	HeaderOrganization  = "ce-organizationid"
	HeaderSchemaVersion = "ce-schemaversion"
	HeaderCorrelationID = "ce-correlationid"
	HeaderCausationID   = "ce-causationid"
	HeaderDataSchema    = "ce-dataschema"
	HeaderSubject       = "ce-subject"
	HeaderDataCType     = "ce-datacontenttype"
)

// Watermill metadata keys set by ToMessage and the decoders. The CloudEvents
// attributes use their header names; the correlation id uses Watermill's own
// key, so that watermill's middleware.CorrelationID and MessageCorrelationID
// work on these messages unchanged.
const (
	MetadataSpecVersion   = HeaderSpecVersion
	MetadataID            = HeaderID
	MetadataType          = HeaderType
	MetadataSource        = HeaderSource
	MetadataTime          = HeaderTime
	MetadataOrganization  = HeaderOrganization
	MetadataSchemaVersion = HeaderSchemaVersion
	MetadataCorrelationID = "correlation_id" // = watermill middleware.CorrelationIDMetadataKey
	MetadataCausationID   = HeaderCausationID
	MetadataContentType   = HeaderContentType
)

// Content types.
const (
	ContentTypeJSON       = "application/json"
	ContentTypeCloudEvent = "application/cloudevents+json"
	// SpecVersion is the CloudEvents version written and the only one read.
	SpecVersion = "1.0"
)

const upperHex = "0123456789ABCDEF"

// percentEncode encodes a ce-* header value as the CloudEvents bindings
// require: space, '"', '%' and every byte outside printable ASCII (0x21-0x7E)
// become %XX of the UTF-8 bytes. Values that need nothing are returned as is.
func percentEncode(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if needsEscape(s[i]) {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xF])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(c byte) bool { return c <= 0x20 || c >= 0x7F || c == '"' || c == '%' }

// percentDecode reverses percentEncode strictly: a '%' not followed by two hex
// digits, or a result that is not valid UTF-8, is an error.
func percentDecode(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, utf8.ValidString(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validHeaderKey reports whether k can be a NATS header name: printable
// ASCII without the separators nats.go refuses (it fails the whole publish
// with ErrBadHeaderMsg otherwise).
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= 0x20 || c >= 0x7F || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v survives a NATS header unchanged:
// nats.go turns CR and LF into spaces and trims surrounding spaces and tabs,
// and NUL cannot be written. (ce-* values are percent-encoded instead.)
func validHeaderValue(v string) bool {
	if v == "" {
		return true
	}
	if isBlank(v[0]) || isBlank(v[len(v)-1]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// hasPrefixFold reports whether s starts with the lowercase ASCII prefix,
// ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// lowerASCII returns s in lowercase ASCII, without allocating when it
// already is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// trimJSONSpace drops the JSON whitespace (space, tab, CR, LF) around b;
// other Unicode spaces are not JSON whitespace and stay, to fail as such.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
