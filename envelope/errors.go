package envelope

import "errors"

// ErrInvalidConfig is the module's one configuration sentinel: every
// package's ErrInvalidConfig (marshaler, transport, jetstream, middleware,
// router) is this value, so errors.Is(err, X.ErrInvalidConfig) holds for a
// configuration error of any of them, and an error wrapped on its way up
// names the sentinel once.
var ErrInvalidConfig = errors.New("invalid configuration")

// ErrInvalidEvent is matched (errors.Is) by every validation failure of an Event,
// together with the specific sentinel below that names the rule that failed.
var ErrInvalidEvent = errors.New("invalid event")

// Specific validation failures. Each error returned by Validate matches
// ErrInvalidEvent and the one of these that names the failed rule (data in
// invalid UTF-8 matches both ErrDataNotJSON and ErrInvalidUTF8).
var (
	// ErrMissingID: the event has no id.
	ErrMissingID = errors.New("event id is empty")
	// ErrMissingType: the event has no type.
	ErrMissingType = errors.New("event type is empty")
	// ErrMissingSource: the event has no source.
	ErrMissingSource = errors.New("event source is empty")
	// ErrInvalidType: the type is not dot-separated tokens of [A-Za-z0-9_-].
	ErrInvalidType = errors.New("event type is not dot-separated [A-Za-z0-9_-] tokens")
	// ErrMissingTimestamp: the timestamp is the zero time.
	ErrMissingTimestamp = errors.New("event timestamp is zero")
	// ErrInvalidTimestamp: the timestamp's year (in UTC) is outside 0000-9999,
	// which RFC 3339 cannot write.
	ErrInvalidTimestamp = errors.New("event timestamp outside years 0000-9999")
	// ErrInvalidSchemaVersion: the schema version is not MAJOR.MINOR.
	ErrInvalidSchemaVersion = errors.New("schema version is not MAJOR.MINOR")
	// ErrDataNotJSON: the data could not be encoded as, or is not, valid JSON.
	ErrDataNotJSON = errors.New("event data is not valid JSON")
	// ErrInvalidUTF8: a string attribute is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("event attribute is not valid UTF-8")
	// ErrTooLarge: the encoded event is larger than the allowed maximum.
	ErrTooLarge = errors.New("encoded event too large")
)

// ErrDataDecode is returned by DecodeData when the data does not fit the target.
var ErrDataDecode = errors.New("cannot decode event data")

// ErrMalformed is returned by UnmarshalJSON for input that is not an envelope:
// not JSON, a key of the wrong JSON type, or an unparsable timestamp.
var ErrMalformed = errors.New("malformed event envelope")

// ErrInvalidSubject is returned by ValidateSubject for a subject that is not
// dot-separated tokens of [A-Za-z0-9_-] (in particular, wildcards are refused).
var ErrInvalidSubject = errors.New("invalid subject")
