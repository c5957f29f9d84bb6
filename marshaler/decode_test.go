package marshaler_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

func TestDecodeNATS_our_mode_reads_every_attribute(t *testing.T) {
	m := marshaler.Default()
	nm, err := m.EventToNATS("auth.user.created", seedEvent(), marshaler.Relations{CorrelationID: "corr 1", CausationID: "cause-1"})
	require.NoError(t, err)

	wm, e, err := m.DecodeNATS(nm.Header, nm.Data)
	require.NoError(t, err)

	assert.Equal(t, seedEvent(), e)
	assert.Equal(t, testID, wm.UUID)
	assert.Equal(t, seedPayload, string(wm.Payload), "the received payload is the message's")
	assert.Equal(t, map[string]string{
		marshaler.MetadataSpecVersion:   "1.0",
		marshaler.MetadataID:            testID,
		marshaler.MetadataType:          "user.created",
		marshaler.MetadataSource:        "auth-service",
		marshaler.MetadataTime:          testTime,
		marshaler.MetadataOrganization:  "org-123",
		marshaler.MetadataSchemaVersion: "1.0",
		marshaler.MetadataContentType:   "application/json",
		marshaler.MetadataCorrelationID: "corr 1",
		marshaler.MetadataCausationID:   "cause-1",
	}, map[string]string(wm.Metadata))
	// Watermill's own correlation helper reads our correlation id.
	assert.Equal(t, "corr 1", middleware.MessageCorrelationID(wm))
}

func TestDecodeNATS_our_mode_without_headers(t *testing.T) {
	wm, e, err := marshaler.Default().DecodeNATS(nil, []byte(seedPayload))
	require.NoError(t, err)
	assert.Equal(t, seedEvent(), e)
	assert.Equal(t, testID, wm.UUID)
	assert.Empty(t, wm.Metadata.Get(marshaler.MetadataCorrelationID))
}

func TestDecodeNATS_binary_mode_reads_every_attribute(t *testing.T) {
	data := `{"order_id": 42, "total": 99.5}`
	wm, e, err := marshaler.Default().DecodeNATS(binaryHeader(), []byte(data))
	require.NoError(t, err)

	assert.Equal(t, &envelope.Event{
		ID:             "evt-42",
		Type:           "com.example.order.placed",
		Source:         "https://example.com/shop eu",
		OrganizationID: "org-9",
		Timestamp:      time.Date(2024, 1, 15, 10, 30, 45, 5e8, time.UTC),
		SchemaVersion:  "1.3",
		Data:           json.RawMessage(data),
	}, e)
	assert.Equal(t, "evt-42", wm.UUID)
	want, err := e.Encode(0)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(wm.Payload), "the message carries the envelope, not the bare data")
	assert.Equal(t, map[string]string{
		marshaler.MetadataSpecVersion:   "1.0",
		marshaler.MetadataID:            "evt-42",
		marshaler.MetadataType:          "com.example.order.placed",
		marshaler.MetadataSource:        "https://example.com/shop eu",
		marshaler.MetadataTime:          "2024-01-15T10:30:45.5Z",
		marshaler.MetadataOrganization:  "org-9",
		marshaler.MetadataSchemaVersion: "1.3",
		marshaler.MetadataContentType:   "application/json",
		marshaler.MetadataCorrelationID: "corr-7",
		marshaler.MetadataCausationID:   "cause-7",
		"ce-subject":                    "order/42",
		"traceparent":                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}, map[string]string(wm.Metadata))
}

func TestDecodeNATS_binary_mode_edge_payloads(t *testing.T) {
	tests := []struct {
		name, data string
		want       json.RawMessage
	}{
		{"no data", ``, nil},
		{"data with an id key is still data", `{"id":"u-1","name":"Ann"}`, json.RawMessage(`{"id":"u-1","name":"Ann"}`)},
		{"data with a numeric id", `{"id":5,"type":7}`, json.RawMessage(`{"id":5,"type":7}`)},
		{"scalar data", `"hello"`, json.RawMessage(`"hello"`)},
		{"array data", `[1,2,3]`, json.RawMessage(`[1,2,3]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e, err := marshaler.Default().DecodeNATS(binaryHeader(), []byte(tt.data))
			require.NoError(t, err)
			assert.Equal(t, tt.want, e.Data)
			assert.Equal(t, "evt-42", e.ID)
		})
	}
}

func TestDecodeNATS_structured_mode_reads_every_attribute(t *testing.T) {
	h := structuredHeader()
	h.Set("ce-id", "ignored-in-structured-mode")
	h.Set("ce-subject", "the-event-wins")
	wm, e, err := marshaler.Default().DecodeNATS(h, []byte(structuredPayload))
	require.NoError(t, err)

	assert.Equal(t, &envelope.Event{
		ID:             "evt-43",
		Type:           "com.example.order.shipped",
		Source:         "/shop/eu",
		OrganizationID: "org-9",
		Timestamp:      testTimestamp,
		SchemaVersion:  "1.1",
		Data:           json.RawMessage(`{"order_id": 43, "carrier": "DHL"}`),
	}, e)
	assert.Equal(t, "evt-43", wm.UUID)
	assert.Equal(t, "corr-8", wm.Metadata.Get(marshaler.MetadataCorrelationID))
	assert.Equal(t, "cause-8", wm.Metadata.Get(marshaler.MetadataCausationID))
	assert.Equal(t, "order/43", wm.Metadata.Get("ce-subject"))
	assert.Equal(t, "3", wm.Metadata.Get("ce-priority"))
	assert.Equal(t, "true", wm.Metadata.Get("ce-urgent"))
	got, err := marshaler.Default().FromMessage(wm)
	require.NoError(t, err)
	assert.Equal(t, e, got)
}

// TestDecodeNATS_structured_data_base64_with_JSON_content_type_is_accepted:
// producers that base64-encode every payload (the CloudEvents SDKs for
// binary-safe transports) send JSON data as data_base64; with a JSON
// datacontenttype (or none) the decoded bytes are the event's data.
func TestDecodeNATS_structured_data_base64_with_JSON_content_type_is_accepted(t *testing.T) {
	data := `{"order_id": 43, "carrier": "DHL"}`
	encoded := base64.StdEncoding.EncodeToString([]byte(data))
	tests := []struct {
		name, contentType string
	}{
		{"application/json", `"datacontenttype": "application/json"`},
		{"with parameters", `"datacontenttype": "application/json; charset=utf-8"`},
		{"a +json type", `"datacontenttype": "application/vnd.shop+json"`},
		{"absent (JSON by default)", `"datacontenttype": null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := strings.Replace(structuredPayload, `"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": "`+encoded+`"`, 1)
			payload = strings.Replace(payload, `"datacontenttype": "application/json"`, tt.contentType, 1)
			_, e, err := marshaler.Default().DecodeNATS(structuredHeader(), []byte(payload))
			require.NoError(t, err)
			assert.JSONEq(t, data, string(e.Data))
			assert.Equal(t, "evt-43", e.ID)
		})
	}
	t.Run("empty data_base64 is an event without data", func(t *testing.T) {
		payload := strings.Replace(structuredPayload, `"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": ""`, 1)
		_, e, err := marshaler.Default().DecodeNATS(structuredHeader(), []byte(payload))
		require.NoError(t, err)
		assert.Nil(t, e.Data)
	})
}

func TestEncodeStructured_round_trips_through_DecodeNATS(t *testing.T) {
	e := seedEvent()
	b, err := marshaler.EncodeStructured(e, marshaler.Relations{CorrelationID: "c", CausationID: "d"})
	require.NoError(t, err)
	wm, got, err := marshaler.Default().DecodeNATS(structuredHeader(), b)
	require.NoError(t, err)
	assert.Equal(t, e, got)
	assert.Equal(t, "c", wm.Metadata.Get(marshaler.MetadataCorrelationID))
	assert.Equal(t, "d", wm.Metadata.Get(marshaler.MetadataCausationID))

	_, err = marshaler.EncodeStructured(&envelope.Event{}, marshaler.Relations{})
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
}

func TestDecodeNATS_schema_majors(t *testing.T) {
	v2 := strings.Replace(seedPayload, `"schema_version":"1.0"`, `"schema_version":"2.0"`, 1)
	binary := binaryHeader()
	binary.Set("ce-schemaversion", "2.1")
	structured := strings.Replace(structuredPayload, `"schemaversion": "1.1"`, `"schemaversion": "2.0"`, 1)
	inputs := []struct {
		name string
		h    nats.Header
		data string
	}{
		{"ours", nil, v2},
		{"binary", binary, `{}`},
		{"structured", structuredHeader(), structured},
	}
	both := mustNew(t, marshaler.Config{SchemaMajors: []int{1, 2}})
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			_, _, err := marshaler.Default().DecodeNATS(in.h, []byte(in.data))
			assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
			assert.ErrorIs(t, err, marshaler.ErrUnknownSchemaMajor)

			_, e, err := both.DecodeNATS(in.h, []byte(in.data))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(e.SchemaVersion, "2."))
		})
	}
}

// TestDecodeNATS_bad_input is one row per bad-input class and mode, each
// asserting ErrUnmarshal and the specific sentinel.
func TestDecodeNATS_bad_input(t *testing.T) {
	ours := func(kv ...string) nats.Header {
		h := header("ce-specversion", "1.0", "ce-id", testID, "ce-type", "user.created", "Content-Type", "application/json")
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = []string{kv[i+1]}
		}
		return h
	}
	binaryWithout := func(name string) nats.Header {
		h := binaryHeader()
		delete(h, name)
		return h
	}
	binaryWith := func(kv ...string) nats.Header {
		h := binaryHeader()
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = []string{kv[i+1]}
		}
		return h
	}
	structuredWithout := func(key string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(structuredPayload), &m); err != nil {
			panic(err)
		}
		delete(m, key)
		b, _ := json.Marshal(m)
		return string(b)
	}
	structuredWith := func(old, new string) string {
		if !strings.Contains(structuredPayload, old) {
			panic("no " + old)
		}
		return strings.Replace(structuredPayload, old, new, 1)
	}
	oursWith := func(old, new string) string {
		if !strings.Contains(seedPayload, old) {
			panic("no " + old)
		}
		return strings.Replace(seedPayload, old, new, 1)
	}
	small := mustNew(t, marshaler.Config{MaxSize: 512})

	tests := []struct {
		name string
		m    *marshaler.Marshaler // default if nil
		h    nats.Header
		data string
		want []error
	}{
		// Repeated headers.
		{"repeated ce-type, different values", nil, header("ce-type", "user.created", "ce-type", "user.deleted"), seedPayload, []error{marshaler.ErrRepeatedHeader}},
		{"ce-id under two spellings", nil, header("ce-id", testID, "CE-ID", "other"), seedPayload, []error{marshaler.ErrRepeatedHeader}},
		{"Content-Type under two spellings", nil, header("Content-Type", "application/json", "content-type", "text/plain"), seedPayload, []error{marshaler.ErrRepeatedHeader}},
		{"repeated extension header", nil, binaryWith("ce-subject", "a", "CE-Subject", "b"), `{}`, []error{marshaler.ErrRepeatedHeader}},
		{"repeated plain header", nil, header("X-Tenant", "a", "X-Tenant", "b"), seedPayload, []error{marshaler.ErrRepeatedHeader}},

		// Missing required attributes, binary mode.
		{"binary without ce-id", nil, binaryWithout("ce-id"), `{}`, []error{marshaler.ErrMissingAttribute}},
		{"binary without ce-type", nil, binaryWithout("ce-type"), `{}`, []error{marshaler.ErrMissingAttribute}},
		{"binary without ce-source", nil, binaryWithout("ce-source"), `{}`, []error{marshaler.ErrMissingAttribute}},
		{"binary without ce-time", nil, binaryWithout("ce-time"), `{}`, []error{marshaler.ErrMissingAttribute}},
		{"binary without ce-specversion", nil, binaryWithout("ce-specversion"), `{"order_id":1}`, []error{marshaler.ErrMissingAttribute}},
		// Missing required attributes, structured mode.
		{"structured without id", nil, structuredHeader(), structuredWithout("id"), []error{marshaler.ErrMissingAttribute}},
		{"structured without type", nil, structuredHeader(), structuredWithout("type"), []error{marshaler.ErrMissingAttribute}},
		{"structured without source", nil, structuredHeader(), structuredWithout("source"), []error{marshaler.ErrMissingAttribute}},
		{"structured without time", nil, structuredHeader(), structuredWithout("time"), []error{marshaler.ErrMissingAttribute}},
		{"structured without specversion", nil, structuredHeader(), structuredWithout("specversion"), []error{marshaler.ErrMissingAttribute}},
		{"structured with null id", nil, structuredHeader(), structuredWith(`"id": "evt-43"`, `"id": null`), []error{marshaler.ErrMissingAttribute}},

		// Wrong JSON types.
		{"ours: id is a number", nil, nil, oursWith(`"id":"`+testID+`"`, `"id":5`), []error{envelope.ErrMalformed}},
		{"ours: timestamp is a number", nil, nil, oursWith(`"timestamp":"`+testTime+`"`, `"timestamp":123`), []error{envelope.ErrMalformed}},
		{"ours: type is an array", nil, nil, oursWith(`"type":"user.created"`, `"type":["user.created"]`), []error{envelope.ErrMalformed}},
		{"ours: not an object", nil, nil, `["id"]`, []error{envelope.ErrMalformed}},
		{"ours: duplicate key", nil, nil, oursWith(`"type":"user.created"`, `"type":"user.created","type":"user.deleted"`), []error{envelope.ErrMalformed}},
		{"structured: id is a number", nil, structuredHeader(), structuredWith(`"id": "evt-43"`, `"id": 5`), []error{envelope.ErrMalformed}},
		{"structured: time is a number", nil, structuredHeader(), structuredWith(`"time": "2024-01-15T10:30:45Z"`, `"time": 1705314645`), []error{envelope.ErrMalformed}},
		{"structured: extension is an object", nil, structuredHeader(), structuredWith(`"priority": 3`, `"priority": {"level": 3}`), []error{envelope.ErrMalformed}},
		{"structured: attribute name not lowercase alphanumeric", nil, structuredHeader(), structuredWith(`"priority": 3`, `"Prio_rity": 3`), []error{envelope.ErrMalformed}},
		{"structured: duplicate key", nil, structuredHeader(), structuredWith(`"id": "evt-43"`, `"id": "evt-43", "id": "evt-44"`), []error{envelope.ErrMalformed}},
		{"structured: not an object", nil, structuredHeader(), `[1]`, []error{envelope.ErrMalformed}},

		// Invalid UTF-8.
		{"ours: invalid UTF-8 in a string", nil, nil, oursWith(`"auth-service"`, "\"auth-\xff\""), []error{envelope.ErrMalformed, envelope.ErrInvalidUTF8}},
		{"ours: invalid UTF-8 in data", nil, nil, oursWith(`"admin"`, "\"adm\xc3\""), []error{envelope.ErrMalformed, envelope.ErrInvalidUTF8}},
		{"binary: invalid UTF-8 in data", nil, binaryHeader(), "{\"k\":\"\xff\"}", []error{envelope.ErrMalformed, envelope.ErrInvalidUTF8}},
		{"structured: invalid UTF-8", nil, structuredHeader(), structuredWith(`"DHL"`, "\"DH\xffL\""), []error{envelope.ErrMalformed, envelope.ErrInvalidUTF8}},
		{"percent-decoded header is invalid UTF-8", nil, binaryWith("ce-source", "shop%FF"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},
		{"raw header is invalid UTF-8", nil, binaryWith("ce-source", "shop\xff"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},
		{"percent-decoded extension is invalid UTF-8", nil, binaryWith("ce-subject", "%C3%28"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},

		// Bad percent-encoding.
		{"lone percent", nil, binaryWith("ce-source", "50%"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},
		{"percent with one digit", nil, binaryWith("ce-source", "a%4"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},
		{"percent with a non-hex digit", nil, binaryWith("ce-source", "a%G0"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},
		{"double percent", nil, binaryWith("ce-id", "%%41"), `{}`, []error{marshaler.ErrInvalidHeaderValue}},

		// Truncated payloads.
		{"ours truncated", nil, nil, seedPayload[:len(seedPayload)/2], []error{envelope.ErrMalformed}},
		{"ours truncated, with headers", nil, ours(), seedPayload[:len(seedPayload)-1], []error{envelope.ErrMalformed}},
		{"binary data truncated", nil, binaryHeader(), `{"order_id": 4`, []error{envelope.ErrMalformed}},
		{"structured truncated", nil, structuredHeader(), structuredPayload[:len(structuredPayload)-10], []error{envelope.ErrMalformed}},
		{"empty payload", nil, nil, ``, []error{envelope.ErrMalformed}},

		// Huge payloads.
		{"ours over MaxSize", small, nil, oursWith(`"admin"`, `"`+strings.Repeat("a", 600)+`"`), []error{envelope.ErrTooLarge}},
		{"binary over MaxSize", small, binaryHeader(), `"` + strings.Repeat("a", 600) + `"`, []error{envelope.ErrTooLarge}},
		{"binary whose envelope is over MaxSize", small, binaryHeader(), `"` + strings.Repeat("a", 400) + `"`, []error{envelope.ErrTooLarge, envelope.ErrInvalidEvent}},
		{"structured over MaxSize", small, structuredHeader(), structuredWith(`"DHL"`, `"`+strings.Repeat("a", 600)+`"`), []error{envelope.ErrTooLarge}},
		{"over the default 1 MiB", nil, nil, oursWith(`"admin"`, `"`+strings.Repeat("a", 1<<20)+`"`), []error{envelope.ErrTooLarge}},

		// Header/payload mismatch (our mode).
		{"ce-id differs", nil, ours("ce-id", "other"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-type differs", nil, header("ce-specversion", "1.0", "ce-type", "user.deleted"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-source differs", nil, header("ce-source", "other-service"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-time differs", nil, header("ce-time", "2024-01-15T10:30:46Z"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-time unparsable", nil, header("ce-time", "yesterday"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-organizationid differs", nil, header("ce-organizationid", "org-999"), seedPayload, []error{marshaler.ErrHeaderMismatch}},
		{"ce-schemaversion differs", nil, header("ce-schemaversion", "1.1"), seedPayload, []error{marshaler.ErrHeaderMismatch}},

		// Content types and specversions.
		{"binary with text/plain data", nil, binaryWith("Content-Type", "text/plain"), `hello`, []error{marshaler.ErrUnsupportedContentType}},
		{"binary with ce-datacontenttype xml", nil, binaryWith("ce-datacontenttype", "application/xml"), `<a/>`, []error{marshaler.ErrUnsupportedContentType}},
		{"structured with xml data", nil, structuredHeader(), structuredWith(`"datacontenttype": "application/json"`, `"datacontenttype": "application/xml"`), []error{marshaler.ErrUnsupportedContentType}},
		{"structured data_base64 that is not JSON", nil, structuredHeader(), structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": "aGVsbG8="`), []error{envelope.ErrMalformed}},
		{"structured data_base64 with a binary content type", nil, structuredHeader(), strings.Replace(
			structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": "aGVsbG8="`),
			`"datacontenttype": "application/json"`, `"datacontenttype": "application/octet-stream"`, 1), []error{marshaler.ErrUnsupportedContentType}},
		{"structured with data and data_base64", nil, structuredHeader(), structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data": {"a": 1}, "data_base64": "e30="`), []error{envelope.ErrMalformed}},
		{"structured data_base64 not base64", nil, structuredHeader(), structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": "%%%"`), []error{envelope.ErrMalformed}},
		{"structured data_base64 not a string", nil, structuredHeader(), structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": 5`), []error{envelope.ErrMalformed}},
		{"structured data_base64 invalid UTF-8", nil, structuredHeader(), structuredWith(`"data": {"order_id": 43, "carrier": "DHL"}`, `"data_base64": "Iv8i"`), []error{envelope.ErrMalformed, envelope.ErrInvalidUTF8}},
		{"batch mode", nil, header("Content-Type", "application/cloudevents-batch+json"), `[` + structuredPayload + `]`, []error{marshaler.ErrUnsupportedContentType}},
		{"binary specversion 0.3", nil, binaryWith("ce-specversion", "0.3"), `{}`, []error{marshaler.ErrUnsupportedSpecVersion}},
		{"structured specversion 0.3", nil, structuredHeader(), structuredWith(`"specversion": "1.0"`, `"specversion": "0.3"`), []error{marshaler.ErrUnsupportedSpecVersion}},

		// Events that break an envelope rule.
		{"binary type with a space", nil, binaryWith("ce-type", "order%20placed"), `{}`, []error{envelope.ErrInvalidEvent, envelope.ErrInvalidType}},
		{"binary time unparsable", nil, binaryWith("ce-time", "yesterday"), `{}`, []error{envelope.ErrMalformed}},
		{"ours without id", nil, nil, oursWith(`"id":"`+testID+`",`, ``), []error{envelope.ErrInvalidEvent, envelope.ErrMissingID}},
		{"ours with a bad schema version", nil, nil, oursWith(`"schema_version":"1.0"`, `"schema_version":"one"`), []error{envelope.ErrInvalidEvent, envelope.ErrInvalidSchemaVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			if m == nil {
				m = marshaler.Default()
			}
			wm, e, err := m.DecodeNATS(tt.h, []byte(tt.data))
			require.Error(t, err)
			assert.Nil(t, wm)
			assert.Nil(t, e)
			assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
			for _, want := range tt.want {
				assert.ErrorIs(t, err, want)
			}

			// Unmarshal (watermill-nats' interface) fails the same way.
			_, err = m.Unmarshal(&nats.Msg{Subject: "x", Header: tt.h, Data: []byte(tt.data)})
			assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
			assert.ErrorIs(t, err, tt.want[0])
		})
	}
}

func TestDecodeNATS_repeated_identical_headers_are_accepted(t *testing.T) {
	h := header("ce-type", "user.created", "ce-type", "user.created", "ce-id", testID, "CE-ID", testID, "X-Tenant", "a", "X-Tenant", "a")
	_, e, err := marshaler.Default().DecodeNATS(h, []byte(seedPayload))
	require.NoError(t, err)
	assert.Equal(t, testID, e.ID)
}

func TestDecodeNATS_ignores_transport_headers(t *testing.T) {
	h := header("Nats-Msg-Id", testID, "Nats-Expected-Stream", "X", "Nats-Msg-Id", "another")
	wm, _, err := marshaler.Default().DecodeNATS(h, []byte(seedPayload))
	require.NoError(t, err)
	for k := range wm.Metadata {
		assert.False(t, strings.HasPrefix(strings.ToLower(k), "nats-"), k)
	}
}

func TestDecodeNATS_does_not_import_process_local_marks_from_headers(t *testing.T) {
	// js-* keys are the subscriber's delivery metadata and settlement marks,
	// dlq-reason/subject/error the dead-letterer's marks: a producer that
	// could set them as headers would steer the consumer (a forged
	// js-terminate drops an event without a dead letter).
	forged := []string{
		"js-terminate", "js-nak-delay", "js-delivery-attempt", "js-stream", "JS-Terminate", "Js-Nak-Delay",
		"dlq-reason", "dlq-subject", "dlq-error",
	}
	kept := map[string]string{
		// The dead letter's own headers (capitalised) are data, not marks.
		"Dlq-Reason": "max_deliver", "Dlq-Error": "boom", "Dlq-Original-Subject": "auth.user.created",
		// Only the exact lowercase marks are dropped.
		"DLQ-REASON": "x", "dlq-other": "y", "X-Tenant": "eu", "xjs-terminate": "z",
	}
	h := header()
	for _, k := range forged {
		h[k] = []string{"forged", "twice"} // not even read: no repeated-header error
	}
	for k, v := range kept {
		h[k] = []string{v}
	}
	for _, tt := range []struct {
		name   string
		decode func() (*message.Message, error)
	}{
		{"DecodeNATS", func() (*message.Message, error) {
			wm, _, err := marshaler.Default().DecodeNATS(h, []byte(seedPayload))
			return wm, err
		}},
		{"NATS.Unmarshal", func() (*message.Message, error) {
			return marshaler.NATS{Marshaler: marshaler.Default()}.Unmarshal(&nats.Msg{Subject: "auth.user.created", Header: h, Data: []byte(seedPayload)})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wm, err := tt.decode()
			require.NoError(t, err)
			for _, k := range forged {
				_, ok := wm.Metadata[k]
				assert.False(t, ok, "%s imported into metadata", k)
			}
			for k := range wm.Metadata {
				assert.False(t, strings.HasPrefix(strings.ToLower(k), "js-"), "%s imported into metadata", k)
			}
			for k, v := range kept {
				assert.Equal(t, v, wm.Metadata[k], k)
			}
		})
	}
}
