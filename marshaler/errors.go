package marshaler

import (
	"errors"
)

// ErrUnmarshal is matched by every decode failure of this package, together
// with the more specific sentinel that says what was wrong.
var ErrUnmarshal = errors.New("cannot unmarshal event")

// Specific decode failures (each also matches ErrUnmarshal).
var (
	// ErrRepeatedHeader: a header this package reads appears with more than one value.
	ErrRepeatedHeader = errors.New("repeated header")
	// ErrMissingAttribute: a CloudEvent lacks a required attribute (id, type,
	// source, time, specversion; time is optional in CloudEvents but the
	// envelope needs a timestamp).
	ErrMissingAttribute = errors.New("missing required attribute")
	// ErrInvalidHeaderValue: a ce-* header is not valid percent-encoded UTF-8.
	ErrInvalidHeaderValue = errors.New("invalid header value")
	// ErrUnsupportedSpecVersion: a CloudEvent whose specversion is not 1.0.
	ErrUnsupportedSpecVersion = errors.New("unsupported CloudEvents specversion")
	// ErrUnsupportedContentType: data that is not JSON (the envelope carries JSON data only).
	ErrUnsupportedContentType = errors.New("unsupported content type")
	// ErrUnknownSchemaMajor: a schema_version whose major is not among Config.SchemaMajors.
	ErrUnknownSchemaMajor = errors.New("unknown schema major version")
	// ErrHeaderMismatch: in our mode, a ce-* attribute header (id, type,
	// source, time, organizationid, schemaversion) disagrees with the payload.
	ErrHeaderMismatch = errors.New("header disagrees with payload")
)

// Encode failures.
var (
	// ErrNotAnEvent: the payload of a Watermill message handed to Marshal is
	// not a valid envelope (the error also wraps the decode failure).
	ErrNotAnEvent = errors.New("message is not an event")
	// ErrInvalidMetadata: a metadata key or value that cannot travel as a NATS
	// header unchanged (a key outside printable ASCII or with a separator, a
	// plain value with CR, LF, NUL or surrounding blanks), or relations that
	// are not valid UTF-8.
	ErrInvalidMetadata = errors.New("invalid metadata for a NATS header")
)
