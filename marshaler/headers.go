package marshaler

import (
	"strings"
	"unicode/utf8"
)

// NATS header names of the wire contract. CloudEvents attribute names are
// lowercase alphanumeric, so the extensions are ce-organizationid, not
// ce-organization_id. NATS header names are case-sensitive; the decoder reads
// ce-* and Content-Type in any case (two spellings of one are a repeated
// header).
const (
	// HeaderMsgID is JetStream's de-duplication id: the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderContentType is application/json in our mode.
	HeaderContentType = "Content-Type"
	// HeaderSpecVersion is the CloudEvents spec version, "1.0".
	HeaderSpecVersion = "ce-specversion"
	// HeaderID is the event id (envelope id).
	HeaderID = "ce-id"
	// HeaderType is the event type (envelope type).
	HeaderType = "ce-type"
	// HeaderSource is the producer (envelope source).
	HeaderSource = "ce-source"
	// HeaderTime is the timestamp, RFC 3339 in UTC (envelope timestamp).
	HeaderTime = "ce-time"
	// HeaderOrganization is the tenant, an extension (envelope organization_id).
	HeaderOrganization = "ce-organizationid"
	// HeaderSchemaVersion is the data's schema version, an extension
	// (envelope schema_version).
	HeaderSchemaVersion = "ce-schemaversion"
	// HeaderCorrelationID is the conversation's id, an extension (not in the
	// envelope: see Relations).
	HeaderCorrelationID = "ce-correlationid"
	// HeaderCausationID is the id of the event that caused this one, an
	// extension (not in the envelope: see Relations).
	HeaderCausationID = "ce-causationid"
	// HeaderDataSchema is the CloudEvents dataschema attribute, read as an
	// extension (metadata ce-dataschema).
	HeaderDataSchema = "ce-dataschema"
	// HeaderSubject is the CloudEvents subject attribute, read as an
	// extension (metadata ce-subject).
	HeaderSubject = "ce-subject"
	// HeaderDataCType is the CloudEvents datacontenttype in binary mode; the
	// data must be JSON.
	HeaderDataCType = "ce-datacontenttype"
)

// Watermill metadata keys set by ToMessage and the decoders. The CloudEvents
// attributes use their header names; the correlation id uses Watermill's own
// key, so that watermill's middleware.CorrelationID and MessageCorrelationID
// work on these messages unchanged. Other metadata travel as headers of the
// same name (ce-* extensions lowercased and percent-encoded).
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
	// ContentTypeJSON is the Content-Type of our mode (and of JSON data).
	ContentTypeJSON = "application/json"
	// ContentTypeCloudEvent selects CloudEvents structured mode.
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
