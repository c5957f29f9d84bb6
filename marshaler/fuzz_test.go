package marshaler_test

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// The fuzz targets cover every decode path. Each checks that nothing panics,
// that every failure is typed, and that every success is self-consistent:
// what was decoded re-encodes and decodes to the same thing. Their corpora in
// testdata/fuzz/<Target> run with the normal tests; `make fuzz` (or
// go test -run='^$' -fuzz=<Target> ./marshaler/) extends them.

// parseHeaders reads "key:value" lines; a key may repeat. The fuzzer mutates
// this text, so it reaches repeated keys, odd cases and odd values.
func parseHeaders(s string) nats.Header {
	h := nats.Header{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		h[k] = append(h[k], v)
	}
	return h
}

func formatHeaders(h nats.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ":" + v + "\n")
		}
	}
	return b.String()
}

// fuzzMarshaler accepts schema majors 0-3 so that the fuzzer also reaches the
// paths past the major check.
func fuzzMarshaler(t testing.TB) *marshaler.Marshaler {
	return mustNew(t, marshaler.Config{SchemaMajors: []int{0, 1, 2, 3}, MaxSize: 64 << 10})
}

func addModeSeeds(f *testing.F) {
	m := marshaler.Default()
	nm, err := m.EventToNATS("s", seedEvent(), marshaler.Relations{CorrelationID: "corr 1", CausationID: "c%2"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(formatHeaders(nm.Header), nm.Data)
	f.Add("", []byte(seedPayload))
	f.Add(formatHeaders(binaryHeader()), []byte(`{"order_id":42,"id":"x"}`))
	f.Add(formatHeaders(binaryHeader()), []byte(``))
	f.Add(formatHeaders(structuredHeader()), []byte(structuredPayload))
	f.Add("ce-type:user.created\nce-type:user.deleted\n", []byte(seedPayload))
	f.Add("ce-id:"+testID+"\nCE-ID:x\n", []byte(seedPayload))
	f.Add("ce-specversion:1.0\nce-source:%ZZ\n", []byte(`{}`))
	f.Add("Content-Type:text/plain\nce-specversion:1.0\n", []byte(`hi`))
	f.Add("ce-id:a\nce-type:b\nce-source:c\nce-time:2024-01-15T10:30:45Z\n", []byte(`{"x":1}`))
	f.Add("", []byte("{\"id\":\"\xff\"}"))
}

func FuzzDecodeNATS(f *testing.F) {
	addModeSeeds(f)
	f.Fuzz(func(t *testing.T, headers string, data []byte) {
		m := fuzzMarshaler(t)
		h := parseHeaders(headers)
		wm, e, err := m.DecodeNATS(h, data)
		if err != nil {
			if wm != nil || e != nil {
				t.Fatalf("results beside an error: %v", err)
			}
			if !errors.Is(err, marshaler.ErrUnmarshal) {
				t.Fatalf("error does not match ErrUnmarshal: %v", err)
			}
			return
		}
		checkDecoded(t, m, wm, e)

		// Watermill -> NATS -> Watermill gives the same message.
		nm, err := m.Marshal("fuzz.subject", wm)
		if err != nil {
			// Only metadata copied from odd headers may fail to travel back.
			if !errors.Is(err, marshaler.ErrInvalidMetadata) {
				t.Fatalf("Marshal of a decoded message: %v", err)
			}
			return
		}
		back, e2, err := m.DecodeNATS(nm.Header, nm.Data)
		if err != nil {
			t.Fatalf("re-decode: %v\nheaders %v\npayload %s", err, nm.Header, nm.Data)
		}
		assertSameEvent(t, e, e2)
		if back.UUID != wm.UUID || !bytes.Equal(back.Payload, wm.Payload) || !maps.Equal(back.Metadata, wm.Metadata) {
			t.Fatalf("round trip changed the message:\n%s %q %v\n%s %q %v", wm.UUID, wm.Payload, wm.Metadata, back.UUID, back.Payload, back.Metadata)
		}
	})
}

// checkDecoded checks a successful decode: the event is valid, the message
// carries it, and FromMessage reads the same event back.
func checkDecoded(t *testing.T, m *marshaler.Marshaler, wm *message.Message, e *envelope.Event) {
	t.Helper()
	if err := e.ValidateSize(m.Config().MaxSize); err != nil {
		t.Fatalf("decoded an invalid event: %v", err)
	}
	if wm.UUID != e.ID || wm.Metadata.Get(marshaler.MetadataID) != e.ID || wm.Metadata.Get(marshaler.MetadataType) != e.Type {
		t.Fatalf("message %s %v does not mirror event %+v", wm.UUID, wm.Metadata, e)
	}
	got, err := m.FromMessage(wm)
	if err != nil {
		t.Fatalf("FromMessage of a decoded message: %v", err)
	}
	assertSameEvent(t, e, got)
}

func assertSameEvent(t *testing.T, want, got *envelope.Event) {
	t.Helper()
	a, err := want.Encode(0)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	b, err := got.Encode(0)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !bytes.Equal(a, b) || !want.Timestamp.Equal(got.Timestamp) {
		t.Fatalf("events differ:\n%s\n%s", a, b)
	}
}

func FuzzBinary(f *testing.F) {
	f.Add("evt-1", "com.example.created", "https://example.com/a%20b", "2024-01-15T10:30:45Z", "org%2F1", "1.0", "application/json", []byte(`{"a":1}`))
	f.Add("%", "a..b", "", "2024-01-15T10:30:45.999999999-23:59", "", "2.0", "text/plain", []byte(`x`))
	f.Add("1", "a", "s", "0000-01-01T00:00:00Z", "", "", "", []byte(``))
	f.Add("1", "a", "s", "2024-01-15T10:30:45Z", "", "1.0", "application/cloudevents+json", []byte(structuredPayload))
	f.Fuzz(func(t *testing.T, id, typ, source, tm, org, schema, ct string, data []byte) {
		h := nats.Header{"ce-specversion": {"1.0"}}
		for k, v := range map[string]string{"ce-id": id, "ce-type": typ, "ce-source": source, "ce-time": tm,
			"ce-organizationid": org, "ce-schemaversion": schema, "Content-Type": ct} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		m := fuzzMarshaler(t)
		wm, e, err := m.DecodeNATS(h, data)
		if err != nil {
			if !errors.Is(err, marshaler.ErrUnmarshal) {
				t.Fatalf("error does not match ErrUnmarshal: %v", err)
			}
			return
		}
		checkDecoded(t, m, wm, e)
	})
}

func FuzzStructured(f *testing.F) {
	f.Add([]byte(structuredPayload))
	f.Add([]byte(`{"specversion":"1.0","id":"1","type":"a","source":"s","time":"2024-01-15T10:30:45Z"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","type":"a","source":"s","time":"2024-01-15T10:30:45Z","data_base64":"aGk="}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","id":"2"}`))
	f.Add([]byte(`{"specversion":"1.0","id":5,"ext":{"a":1}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","type":"a","source":"s","time":"2024-01-15T10:30:45Z","x":1e400,"data":"\ud800"}`))
	b, err := marshaler.EncodeStructured(seedEvent(), marshaler.Relations{CorrelationID: "c"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := fuzzMarshaler(t)
		wm, e, err := m.DecodeNATS(structuredHeader(), payload)
		if err != nil {
			if !errors.Is(err, marshaler.ErrUnmarshal) {
				t.Fatalf("error does not match ErrUnmarshal: %v", err)
			}
			return
		}
		checkDecoded(t, m, wm, e)

		rel := marshaler.RelationsFromMessage(wm)
		again, err := marshaler.EncodeStructured(e, rel)
		if err != nil {
			t.Fatalf("EncodeStructured of a decoded event: %v", err)
		}
		back, e2, err := m.DecodeNATS(structuredHeader(), again)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, again)
		}
		assertSameEvent(t, e, e2)
		if got := marshaler.RelationsFromMessage(back); got != rel {
			t.Fatalf("relations changed: %+v -> %+v", rel, got)
		}
	})
}

func FuzzFromMessage(f *testing.F) {
	f.Add([]byte(seedPayload))
	f.Add([]byte(strings.Replace(seedPayload, `"1.0"`, `"2.0"`, 1)))
	f.Add([]byte(`{"id":"1","type":"a","source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":null}`))
	f.Add([]byte(`{"id":"1","type":"a","source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":1,"data":2}`))
	f.Add([]byte(`{"id":5}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := marshaler.Default()
		e, err := m.FromMessage(message.NewMessage("uuid", payload))
		if err != nil {
			if !errors.Is(err, marshaler.ErrUnmarshal) {
				t.Fatalf("error does not match ErrUnmarshal: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("FromMessage returned an invalid event: %v", err)
		}
		wm, err := m.ToMessage(e)
		if err != nil {
			t.Fatalf("ToMessage of a decoded event: %v", err)
		}
		again, err := m.FromMessage(wm)
		if err != nil {
			t.Fatalf("FromMessage of ToMessage: %v", err)
		}
		assertSameEvent(t, e, again)

		var cqrsData any
		if err := (marshaler.CQRS{Marshaler: m}).Unmarshal(wm, &cqrsData); err != nil {
			t.Fatalf("CQRS Unmarshal of a valid event's data: %v", err)
		}
	})
}

func FuzzMarshal(f *testing.F) {
	f.Add([]byte(seedPayload), "correlation_id:c\nce-causationid:d\ntraceparent:x\nce-subject:a b")
	f.Add([]byte(seedPayload), "X Bad:1")
	f.Add([]byte(seedPayload), "X-Note: lead")
	f.Add([]byte(seedPayload), "ce-x:1\nCE-X:2")
	f.Add([]byte(seedPayload), "ce-x:\xff")
	f.Add([]byte(`{"user_id":1}`), "ce-id:1\nce-type:a")
	f.Fuzz(func(t *testing.T, payload []byte, metadata string) {
		wm := message.NewMessage("uuid", payload)
		for k, vs := range parseHeaders(metadata) {
			wm.Metadata.Set(k, vs[len(vs)-1])
		}
		m := fuzzMarshaler(t)
		nm, err := m.Marshal("fuzz.subject", wm)
		if err != nil {
			if !errors.Is(err, marshaler.ErrNotAnEvent) && !errors.Is(err, marshaler.ErrInvalidMetadata) {
				t.Fatalf("Marshal error matches neither ErrNotAnEvent nor ErrInvalidMetadata: %v", err)
			}
			return
		}
		want, err := envelope.Decode(payload, 0)
		if err != nil {
			t.Fatalf("Marshal accepted a payload envelope.Decode refuses: %v", err)
		}
		back, e, err := m.DecodeNATS(nm.Header, nm.Data)
		if err != nil {
			if errors.Is(err, marshaler.ErrUnknownSchemaMajor) {
				return // the producer side does not check majors
			}
			t.Fatalf("DecodeNATS of Marshal's output: %v\n%v", err, nm.Header)
		}
		assertSameEvent(t, want, e)
		if got, exp := marshaler.RelationsFromMessage(back), marshaler.RelationsFromMessage(wm); got != exp {
			t.Fatalf("relations changed: %+v -> %+v", exp, got)
		}
	})
}

func FuzzPercentDecode(f *testing.F) {
	for _, s := range []string{"", "plain", "a%20b", "%", "%4", "%G0", "%%", "%C3%A9", "%FF", "caf\xc3\xa9", "\xff", "%e2%9c%93"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, ok := marshaler.PercentDecode(s); ok {
			if !utf8.ValidString(dec) {
				t.Fatalf("decoded %q to invalid UTF-8 %q", s, dec)
			}
			if again, ok := marshaler.PercentDecode(marshaler.PercentEncode(dec)); !ok || again != dec {
				t.Fatalf("%q: decode(encode(%q)) = %q, %v", s, dec, again, ok)
			}
		}
		enc := marshaler.PercentEncode(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] <= 0x20 || enc[i] >= 0x7F || enc[i] == '"' {
				t.Fatalf("encode(%q) = %q has byte %q", s, enc, enc[i])
			}
		}
		dec, ok := marshaler.PercentDecode(enc)
		if ok != utf8.ValidString(s) || ok && dec != s {
			t.Fatalf("decode(encode(%q)) = %q, %v", s, dec, ok)
		}
	})
}
