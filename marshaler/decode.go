package marshaler

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
)

// DecodeNATS decodes NATS headers and payload into a Watermill message and the
// event it carries. The content mode is chosen as follows:
//   - Content-Type application/cloudevents+json: CloudEvents structured mode;
//   - no ce-specversion header: ours (the payload is the envelope);
//   - ce-specversion and a non-JSON data content type: CloudEvents binary mode
//     (refused: ErrUnsupportedContentType);
//   - ce-specversion and a payload that decodes as an envelope: ours;
//   - ce-specversion and a payload that is JSON but not an object with the
//     envelope's id, type, source and timestamp keys: binary mode.
//
// In our mode, every ce-* attribute header present must agree with the
// payload (ErrHeaderMismatch). The Watermill message's UUID is the event id,
// its payload the envelope's JSON (in our mode the received bytes, not a
// copy), its metadata the attributes (Metadata* keys), the relations, the
// CloudEvents extensions (ce-<name>) and the other headers as they are
// (except Nats-*, which belong to the transport, and the process-local marks
// js-* and dlq-reason/-subject/-error, which no producer may set: see
// localMark).
//
// Errors match ErrUnmarshal and a specific sentinel: envelope.ErrTooLarge,
// ErrRepeatedHeader, ErrInvalidHeaderValue, envelope.ErrMalformed (with
// envelope.ErrInvalidUTF8 for bad UTF-8), ErrMissingAttribute,
// ErrUnsupportedSpecVersion, ErrUnsupportedContentType, ErrHeaderMismatch,
// envelope.ErrInvalidEvent (with the envelope rule's sentinel) or ErrUnknownSchemaMajor.
//
// An event stored by a recurring message schedule (Nats-Scheduler and a
// Nats-Schedule-Next time) decodes with the id OccurrenceID gives it, its
// payload re-encoded with that id.
func (m *Marshaler) DecodeNATS(h nats.Header, data []byte) (*message.Message, *envelope.Event, error) {
	if len(data) > m.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%w: %w: payload of %d bytes, max %d", ErrUnmarshal, envelope.ErrTooLarge, len(data), m.cfg.MaxSize)
	}
	hd, err := readHeaders(h, len(h)+transportMetadataRoom)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	e, payload, err := m.decodeMode(&hd, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	if err := m.checkMajor(e); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	if next := occurrenceNext(h); next != "" {
		// An occurrence of a recurring schedule: an event of its own.
		e.ID, payload = OccurrenceID(e.ID, next), nil
	}
	if payload == nil {
		payload = e.AppendJSON(make([]byte, 0, e.EncodedLen()))
	}
	wm := message.NewMessage(e.ID, payload)
	// The other headers already sit in a map sized for the whole metadata:
	// it becomes the message's, rather than being copied into another.
	if hd.extra != nil {
		wm.Metadata = hd.extra
	} else {
		wm.Metadata = make(message.Metadata, eventMetadataLen(e, hd.rel)+transportMetadataRoom)
	}
	setEventMetadata(wm.Metadata, e, hd.canonicalTime(e))
	SetRelations(wm, hd.rel)
	return wm, e, nil
}

// eventMetadataLen is the number of keys setEventMetadata and SetRelations
// write for e and rel.
func eventMetadataLen(e *envelope.Event, rel Relations) int {
	n := eventMetadataCount
	if e.OrganizationID == "" {
		n--
	}
	if rel.CorrelationID == "" {
		n--
	}
	if rel.CausationID == "" {
		n--
	}
	return n
}

// canonicalTime returns the ce-time header when it is already the envelope's
// text for e's timestamp (as our producer writes it), saving a string, else
// "".
func (hd *headerData) canonicalTime(e *envelope.Event) string {
	if hd.timeCanonical {
		return hd.time
	}
	var buf [64]byte
	if hd.time != "" && string(e.Timestamp.UTC().AppendFormat(buf[:0], time.RFC3339Nano)) == hd.time {
		return hd.time
	}
	return ""
}

// decodeMode picks the content mode (see DecodeNATS) and decodes the event.
// payload is data when it already is the envelope, else nil.
func (m *Marshaler) decodeMode(hd *headerData, data []byte) (e *envelope.Event, payload []byte, err error) {
	if hd.specVersion != "" && hd.specVersion != SpecVersion {
		return nil, nil, fmt.Errorf("%w: ce-specversion %q", ErrUnsupportedSpecVersion, hd.specVersion)
	}
	switch {
	case hasPrefixFold(hd.contentType, "application/cloudevents"):
		if hd.contentType != ContentTypeCloudEvent {
			return nil, nil, fmt.Errorf("%w: %q (structured mode reads the JSON format only)", ErrUnsupportedContentType, hd.contentType)
		}
		e, err = m.decodeStructured(hd, data)
		return e, nil, err
	case hd.specVersion == "":
		e, err = m.decodeOurs(hd, data)
		if err != nil && hd.hasAttributes() && isBinaryData(data) {
			// ce-* attributes around a payload that is not an envelope: a
			// binary-mode event without its specversion.
			return nil, nil, fmt.Errorf("%w: CloudEvents binary mode without specversion (payload is not an envelope: %w)", ErrMissingAttribute, err)
		}
		return e, data, err
	case !isJSONContentType(hd.dataContentType()):
		return nil, nil, fmt.Errorf("%w: %q (data must be JSON)", ErrUnsupportedContentType, hd.dataContentType())
	}
	e, err = m.decodeOurs(hd, data)
	if err != nil && isBinaryData(data) {
		e, err = m.decodeBinary(hd, data)
		return e, nil, err
	}
	return e, data, err
}

// decodeOurs decodes an envelope payload and checks the headers against it.
func (m *Marshaler) decodeOurs(hd *headerData, data []byte) (*envelope.Event, error) {
	e, err := envelope.Decode(data, m.cfg.MaxSize)
	if err != nil {
		return nil, err
	}
	if err := hd.checkAgainst(e); err != nil {
		return nil, err
	}
	return e, nil
}

// isBinaryData reports whether a payload that did not decode as an envelope is
// the data of a CloudEvents binary-mode message: empty, or valid JSON that is
// not an object holding the envelope's id, type, source and timestamp keys.
// A payload that is not JSON at all stays an envelope error (binary mode would
// refuse it too, its data being JSON), so that a truncated envelope reads as
// envelope.ErrMalformed whatever its headers. Only failed decodes get here.
func isBinaryData(data []byte) bool {
	if len(trimJSONSpace(data)) == 0 {
		return true
	}
	if !utf8.Valid(data) || !json.Valid(data) {
		return false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return true // JSON, but not an object
	}
	for _, k := range [...]string{"id", "type", "source", "timestamp"} {
		if _, ok := obj[k]; !ok {
			return true
		}
	}
	return false
}

// headerData is what readHeaders extracts in one pass over the headers.
type headerData struct {
	specVersion, id, typ, source, time, org, schema string
	contentType, ceDataContentType                  string
	rel                                             Relations
	// extra holds the headers that become metadata as they are; made on
	// first use with room for all of the message's metadata (extraHint:
	// the headers' count plus transportMetadataRoom, about one key per
	// header).
	extra     map[string]string
	extraHint int
	// timeCanonical is set by checkAgainst when time is the envelope's own
	// text for the payload's timestamp.
	timeCanonical bool
}

// transportMetadataRoom is the room left in a decoded message's metadata for
// the keys a subscriber adds per delivery (the jetstream subscriber's six
// js-* keys), so that adding them does not grow the map (a grow costs about
// a fifth of the decode).
const transportMetadataRoom = 6

// hasAttributes reports whether any CloudEvents attribute header was read.
func (hd *headerData) hasAttributes() bool {
	return hd.id != "" || hd.typ != "" || hd.source != "" || hd.time != ""
}

func (hd *headerData) dataContentType() string {
	if hd.ceDataContentType != "" {
		return hd.ceDataContentType
	}
	return hd.contentType
}

func (hd *headerData) setExtra(k, v string) error {
	if old, ok := hd.extra[k]; ok && old != v {
		return fmt.Errorf("%w: %q has two values", ErrRepeatedHeader, k)
	}
	if hd.extra == nil {
		hd.extra = make(map[string]string, max(hd.extraHint, 4))
	}
	hd.extra[k] = v
	return nil
}

// Header fields, as bits of the set of fields already read, to catch the same
// header under two spellings (NATS header names are case-sensitive, CloudEvents
// attribute names are not).
const (
	hdrSpecVersion = 1 << iota
	hdrID
	hdrType
	hdrSource
	hdrTime
	hdrOrganization
	hdrSchemaVersion
	hdrCorrelationID
	hdrCausationID
	hdrDataContentType
	hdrContentType
)

// readHeaders reads every header once: the ce-* attributes (names in any case,
// values percent-decoded) and Content-Type into fields, other ce-* headers
// into extra under their lowercase name, other headers into extra as they are,
// Nats-* headers (they belong to the transport) and process-local marks
// (localMark) not at all. A header with two different values, under one name
// or two spellings of it, is an error.
//
// extraHint sizes the map of the other headers, made only if there are any.
func readHeaders(h nats.Header, extraHint int) (headerData, error) {
	var (
		hd   = headerData{extraHint: extraHint}
		seen int
	)
	for k, vs := range h {
		if len(vs) == 0 || hasPrefixFold(k, "nats-") || localMark(k) {
			continue
		}
		for _, v := range vs[1:] {
			if v != vs[0] {
				return hd, fmt.Errorf("%w: %q has %d different values", ErrRepeatedHeader, k, len(vs))
			}
		}
		v := vs[0]
		if len(k) == len(HeaderContentType) && strings.EqualFold(k, HeaderContentType) {
			ct, _, _ := strings.Cut(v, ";")
			ct = lowerASCII(strings.TrimSpace(ct))
			if seen&hdrContentType != 0 && ct != hd.contentType {
				return hd, fmt.Errorf("%w: %q", ErrRepeatedHeader, HeaderContentType)
			}
			seen |= hdrContentType
			hd.contentType = ct
			continue
		}
		if !hasPrefixFold(k, "ce-") {
			if err := hd.setExtra(k, v); err != nil {
				return hd, err
			}
			continue
		}
		dv, ok := percentDecode(v)
		if !ok {
			return hd, fmt.Errorf("%w: %s: not percent-encoded UTF-8", ErrInvalidHeaderValue, k)
		}
		lk := lowerASCII(k)
		var (
			bit int
			dst *string
		)
		switch lk {
		case HeaderSpecVersion:
			bit, dst = hdrSpecVersion, &hd.specVersion
		case HeaderID:
			bit, dst = hdrID, &hd.id
		case HeaderType:
			bit, dst = hdrType, &hd.typ
		case HeaderSource:
			bit, dst = hdrSource, &hd.source
		case HeaderTime:
			bit, dst = hdrTime, &hd.time
		case HeaderOrganization:
			bit, dst = hdrOrganization, &hd.org
		case HeaderSchemaVersion:
			bit, dst = hdrSchemaVersion, &hd.schema
		case HeaderCorrelationID:
			bit, dst = hdrCorrelationID, &hd.rel.CorrelationID
		case HeaderCausationID:
			bit, dst = hdrCausationID, &hd.rel.CausationID
		case HeaderDataCType:
			bit, dst = hdrDataContentType, &hd.ceDataContentType
		default:
			if err := hd.setExtra(lk, dv); err != nil {
				return hd, err
			}
			continue
		}
		if seen&bit != 0 && *dst != dv {
			return hd, fmt.Errorf("%w: %q has two values", ErrRepeatedHeader, lk)
		}
		seen |= bit
		*dst = dv
	}
	return hd, nil
}

// Dead-letter marks: the metadata keys of jetevents' middleware
// (middleware.MetadataDeadLetterReason, ...Subject, ...Error; this package
// sits below middleware and cannot import it). The dead letter's own headers
// (Dlq-Reason, ...) are spelled differently and travel as plain headers.
const (
	markDeadLetterReason  = "dlq-reason"
	markDeadLetterSubject = "dlq-subject"
	markDeadLetterError   = "dlq-error"
)

// localMark reports whether k is a process-local metadata key, which never
// crosses the wire in either direction: any js-* key in any case (the
// jetstream subscriber's delivery metadata and its settlement marks
// js-terminate and js-nak-delay) and the dead-letter marks, matched exactly.
// A producer able to set them as headers could steer consumers (a forged
// js-terminate turns a retryable failure into a Term: the event lost, no
// dead letter), and a consumed message republished as is would carry its
// delivery's metadata into the next one.
func localMark(k string) bool {
	if hasPrefixFold(k, "js-") {
		return true
	}
	switch k {
	case markDeadLetterReason, markDeadLetterSubject, markDeadLetterError:
		return true
	}
	return false
}

// checkAgainst refuses an envelope whose attribute headers describe another
// event: routing and filtering read headers, the handler reads the payload,
// and they must agree. Absent headers are not checked.
func (hd *headerData) checkAgainst(e *envelope.Event) error {
	for _, c := range [...]struct{ name, header, payload string }{
		{HeaderID, hd.id, e.ID},
		{HeaderType, hd.typ, e.Type},
		{HeaderSource, hd.source, e.Source},
		{HeaderOrganization, hd.org, e.OrganizationID},
		{HeaderSchemaVersion, hd.schema, e.SchemaVersion},
	} {
		if c.header != "" && c.header != c.payload {
			return fmt.Errorf("%w: %s %q, payload %q", ErrHeaderMismatch, c.name, c.header, c.payload)
		}
	}
	if hd.time != "" {
		// Our producer writes the envelope's own text: equal text is an
		// equal instant (a validated timestamp's year is 0000-9999, which
		// RFC 3339 round-trips), and the parse is only needed otherwise.
		var buf [64]byte
		if string(e.Timestamp.UTC().AppendFormat(buf[:0], time.RFC3339Nano)) == hd.time {
			hd.timeCanonical = true
			return nil
		}
		t, err := envelope.ParseTime(hd.time)
		if err != nil || !t.Equal(e.Timestamp) {
			return fmt.Errorf("%w: %s %q, payload %q", ErrHeaderMismatch, HeaderTime, hd.time, envelope.FormatTime(e.Timestamp))
		}
	}
	return nil
}

func (m *Marshaler) checkMajor(e *envelope.Event) error {
	major, err := e.SchemaMajor()
	if err != nil {
		return err
	}
	if !m.acceptsMajor(major) {
		return fmt.Errorf("%w: schema_version %q (accepted majors %v)", ErrUnknownSchemaMajor, e.SchemaVersion, m.cfg.SchemaMajors)
	}
	return nil
}
