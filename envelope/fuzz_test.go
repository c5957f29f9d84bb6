package envelope_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jetevents/events/envelope"
)

// FuzzEnvelopeUnmarshal feeds arbitrary bytes to the envelope decoder and
// checks it against encoding/json:
//   - it never panics, and every failure matches ErrMalformed or ErrInvalidEvent;
//   - what it decodes, encoding/json decodes to the same attribute values;
//   - a decoded event that validates re-encodes to bytes that decode to the
//     same event and re-encode identically (the encoding is a fixed point);
//   - embedded as the data of a valid envelope, the input is accepted exactly
//     when encoding/json says it is valid JSON (and it is valid UTF-8).
//
// The checked-in corpus (testdata/fuzz/FuzzEnvelopeUnmarshal) runs with the
// normal tests; `go test -fuzz=FuzzEnvelopeUnmarshal ./envelope/` extends it.
func FuzzEnvelopeUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"id":"550e8400-e29b-41d4-a716-446655440000","type":"user.created","source":"auth-service","organization_id":"org-123","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":{"user_id":12345,"email":"user@example.com","role":"admin"}}`,
		`{"id":"1","type":"a","source":"s","timestamp":"2024-01-15T10:30:45.123456789+02:00","schema_version":"2.7","data":[1,-2.5e-3,true,false,null,"\u00e9\ud83d\ude00"]}`,
		`{"id":"\u0031","type":"a.b","source":"s","organization_id":null,"timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","x":{"y":[]}}`,
		`{"id":5}`, `{"timestamp":123}`, `{"id":"1","id":"2"}`, `{"ID":"1"}`, `[]`, `{}`, ` {} `, `{"data":01}`,
		"{\"id\":\"\xff\"}", `{"source":"\ud800"}`, `{"data":"\u2028"}`, `{"data":[[[[[[[[[[]]]]]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e envelope.Event
		err := e.UnmarshalJSON(b)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("UnmarshalJSON error does not match ErrMalformed: %v", err)
			}
		} else {
			checkAgainstEncodingJSON(t, b, &e)
		}

		d, derr := envelope.Decode(b, 0)
		switch {
		case derr == nil:
			if err != nil {
				t.Fatalf("Decode accepted what UnmarshalJSON refused: %v", err)
			}
			checkFixedPoint(t, d)
		case !errors.Is(derr, envelope.ErrMalformed) && !errors.Is(derr, envelope.ErrInvalidEvent):
			t.Fatalf("Decode error matches neither ErrMalformed nor ErrInvalidEvent: %v", derr)
		case err == nil && errors.Is(derr, envelope.ErrMalformed):
			t.Fatalf("Decode says malformed what UnmarshalJSON read: %v", derr)
		}

		checkDataValidation(t, b)
	})
}

// checkAgainstEncodingJSON compares the decoded attributes with what
// encoding/json reads from the same bytes.
func checkAgainstEncodingJSON(t *testing.T, b []byte, e *envelope.Event) {
	t.Helper()
	if !utf8.Valid(b) || !json.Valid(b) {
		t.Fatalf("decoded input that encoding/json or utf8 refuses: %q", b)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("decoded input encoding/json cannot read as an object: %v", err)
	}
	for key, got := range map[string]string{
		"id": e.ID, "type": e.Type, "source": e.Source, "organization_id": e.OrganizationID, "schema_version": e.SchemaVersion,
	} {
		var want *string
		if v, ok := raw[key]; ok {
			if err := json.Unmarshal(v, &want); err != nil {
				t.Fatalf("key %q: decoded %q, encoding/json fails: %v", key, got, err)
			}
		}
		if want == nil {
			want = new(string)
		}
		if got != *want {
			t.Fatalf("key %q: decoded %q, encoding/json %q", key, got, *want)
		}
	}
	if v, ok := raw["data"]; ok && !bytes.Equal(bytes.TrimSpace(v), e.Data) {
		t.Fatalf("data: decoded %q, encoding/json %q", e.Data, v)
	}
}

// checkFixedPoint re-encodes a decoded, valid event and decodes it again.
func checkFixedPoint(t *testing.T, e *envelope.Event) {
	t.Helper()
	out, err := e.Encode(0)
	if err != nil {
		t.Fatalf("a decoded, valid event does not encode: %v", err)
	}
	again, err := envelope.Decode(out, 0)
	if err != nil {
		t.Fatalf("re-encoded event does not decode: %v\n%s", err, out)
	}
	if again.ID != e.ID || again.Type != e.Type || again.Source != e.Source ||
		again.OrganizationID != e.OrganizationID || again.SchemaVersion != e.SchemaVersion ||
		!again.Timestamp.Equal(e.Timestamp) || !bytes.Equal(again.Data, bytes.TrimSpace(e.Data)) && !(len(e.Data) == 0 && string(again.Data) == "null") {
		t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
	}
	out2, err := again.Encode(0)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("encoding is not a fixed point (%v):\n%s\n%s", err, out, out2)
	}
}

// checkDataValidation embeds b as the data of a valid envelope: the decoder
// must accept it exactly when it is one JSON value in valid UTF-8.
func checkDataValidation(t *testing.T, b []byte) {
	t.Helper()
	if len(bytes.TrimSpace(b)) == 0 {
		return // "data": followed by nothing is not JSON, whatever b is
	}
	doc := append([]byte(`{"id":"1","type":"a","source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":`), b...)
	doc = append(doc, '}')
	d, err := envelope.Decode(doc, 0)
	want := utf8.Valid(b) && json.Valid(b)
	if want && err != nil {
		t.Fatalf("data %q: decode error %v, but encoding/json says valid", b, err)
	}
	// Invalid b may still make a valid document (b = `1,"x":2`), but then
	// the data read is not b.
	if !want && err == nil && bytes.Equal(d.Data, bytes.TrimSpace(b)) {
		t.Fatalf("data %q: decoded, but encoding/json says invalid", b)
	}

	e := &envelope.Event{ID: "1", Type: "a", Source: "s", Timestamp: time.Unix(1, 0), SchemaVersion: "1.0", Data: b}
	if err := e.Validate(); (err == nil) != want {
		t.Fatalf("Validate of data %q: %v, but encoding/json valid=%v", b, err, want)
	}
}
