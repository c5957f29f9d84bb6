package marshaler_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
)

func TestEventToNATS_writes_the_wire_contract(t *testing.T) {
	e := seedEvent()
	e.Source = "auth service \"eu\" 100% ✓"
	nm, err := marshaler.Default().EventToNATS("auth.user.created", e, marshaler.Relations{CorrelationID: "corr\r\n1"})
	require.NoError(t, err)

	assert.Equal(t, "auth.user.created", nm.Subject)
	assert.Equal(t, nats.Header{
		"Nats-Msg-Id":       {testID},
		"Content-Type":      {"application/json"},
		"ce-specversion":    {"1.0"},
		"ce-id":             {testID},
		"ce-type":           {"user.created"},
		"ce-source":         {"auth%20service%20%22eu%22%20100%25%20%E2%9C%93"},
		"ce-time":           {testTime},
		"ce-organizationid": {"org-123"},
		"ce-schemaversion":  {"1.0"},
		"ce-correlationid":  {"corr%0D%0A1"},
	}, nm.Header)
	want, err := e.Encode(0)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(nm.Data))
}

func TestEventToNATS_refuses_invalid_events_and_relations(t *testing.T) {
	m := marshaler.Default()
	bad := seedEvent()
	bad.Type = "user.*"
	_, err := m.EventToNATS("s", bad, marshaler.Relations{})
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrInvalidType)

	_, err = mustNew(t, marshaler.Config{MaxSize: 100}).EventToNATS("s", seedEvent(), marshaler.Relations{})
	assert.ErrorIs(t, err, envelope.ErrTooLarge)

	_, err = m.EventToNATS("s", seedEvent(), marshaler.Relations{CausationID: "\xff"})
	assert.ErrorIs(t, err, marshaler.ErrInvalidMetadata)
}

func TestMaxSize_counts_the_headers_as_NATS_does(t *testing.T) {
	nm, err := marshaler.Default().EventToNATS("s", seedEvent(), marshaler.Relations{})
	require.NoError(t, err)
	msgSize := nm.Size() - len(nm.Subject) // nats.go's own count: headers + payload
	require.Greater(t, msgSize, len(seedPayload))

	fits := mustNew(t, marshaler.Config{MaxSize: msgSize})
	_, err = fits.EventToNATS("s", seedEvent(), marshaler.Relations{})
	require.NoError(t, err)

	// The payload alone fits, with its headers it does not.
	tight := mustNew(t, marshaler.Config{MaxSize: msgSize - 1})
	_, err = tight.EventToNATS("s", seedEvent(), marshaler.Relations{})
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrTooLarge)
	wm, err := tight.ToMessage(seedEvent())
	require.NoError(t, err, "a Watermill message has no headers to count")
	_, err = tight.Marshal("s", wm)
	assert.ErrorIs(t, err, envelope.ErrTooLarge)
}

func TestEventToNATS_msg_id_of_an_unusual_id_is_header_safe(t *testing.T) {
	e := seedEvent()
	e.ID = "order 42\r\nNats-Expected-Stream: X"
	nm, err := marshaler.Default().EventToNATS("s", e, marshaler.Relations{})
	require.NoError(t, err)
	assert.Equal(t, "order%2042%0D%0ANats-Expected-Stream:%20X", nm.Header.Get(marshaler.HeaderMsgID))
	_, got, err := marshaler.Default().DecodeNATS(nm.Header, nm.Data)
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID)
}

func TestPercentEncoding_round_trips(t *testing.T) {
	tests := []struct{ in, encoded string }{
		{"plain-value_1.0", "plain-value_1.0"},
		{"with space", "with%20space"},
		{`a "quoted" word`, "a%20%22quoted%22%20word"},
		{"100%", "100%25"},
		{"%41", "%2541"},
		{"café ✓ 😀", "caf%C3%A9%20%E2%9C%93%20%F0%9F%98%80"},
		{"line\r\nbreak\ttab\x00nul\x7fdel", "line%0D%0Abreak%09tab%00nul%7Fdel"},
		{"https://example.com/a?b=c&d=e#f", "https://example.com/a?b=c&d=e#f"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.encoded, func(t *testing.T) {
			enc := marshaler.PercentEncode(tt.in)
			assert.Equal(t, tt.encoded, enc)
			for i := 0; i < len(enc); i++ {
				assert.True(t, enc[i] > 0x20 && enc[i] < 0x7F, "byte %q of %q is not printable ASCII", enc[i], enc)
			}
			dec, ok := marshaler.PercentDecode(enc)
			require.True(t, ok)
			assert.Equal(t, tt.in, dec)
		})
	}
	// Lowercase hex decodes too.
	dec, ok := marshaler.PercentDecode("caf%c3%a9")
	assert.True(t, ok)
	assert.Equal(t, "café", dec)
	for _, bad := range []string{"%", "%4", "%4G", "%%", "%FF", "\xff", "%C3"} {
		_, ok := marshaler.PercentDecode(bad)
		assert.False(t, ok, bad)
	}
}

func TestMarshal_derives_headers_from_the_payload(t *testing.T) {
	m := marshaler.Default()
	wm, err := m.ToMessage(seedEvent())
	require.NoError(t, err)
	wm.Metadata.Set(marshaler.MetadataType, "tampered.type") // the payload wins
	wm.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	wm.Metadata.Set("X-Tenant", "eu")
	wm.Metadata.Set("CE-Subject", "order 42") // an extension, in any case

	nm, err := m.Marshal("auth.user.created", wm)
	require.NoError(t, err)
	assert.Equal(t, "auth.user.created", nm.Subject)
	assert.Equal(t, seedPayload, string(nm.Data))
	assert.Equal(t, "user.created", nm.Header.Get(marshaler.HeaderType))
	assert.Equal(t, testID, nm.Header.Get(marshaler.HeaderMsgID))
	assert.Equal(t, "order%2042", nm.Header.Get("ce-subject"))
	assert.Equal(t, "eu", nm.Header.Get("X-Tenant"))
	assert.Len(t, nm.Header, 12)

	// And back: the plain metadata and the extension survive.
	back, err := m.Unmarshal(nm)
	require.NoError(t, err)
	assert.Equal(t, "user.created", back.Metadata.Get(marshaler.MetadataType))
	assert.Equal(t, "order 42", back.Metadata.Get("ce-subject"))
	assert.Equal(t, "eu", back.Metadata.Get("X-Tenant"))
	assert.Equal(t, wm.Metadata.Get("traceparent"), back.Metadata.Get("traceparent"))
	assert.Equal(t, testID, back.UUID)
}

func TestMarshal_accepts_a_hand_built_envelope_message(t *testing.T) {
	wm := message.NewMessage("any-uuid", []byte(seedPayload))
	nm, err := marshaler.Default().Marshal("auth.user.created", wm)
	require.NoError(t, err)
	assert.Equal(t, testID, nm.Header.Get(marshaler.HeaderMsgID), "the event id, not the message UUID")
	assert.Equal(t, "auth-service", nm.Header.Get(marshaler.HeaderSource))
}

func TestMarshal_of_a_non_event_message_is_ErrNotAnEvent(t *testing.T) {
	tests := map[string]*message.Message{
		"plain text":         message.NewMessage("1", []byte("hello")),
		"empty":              message.NewMessage("1", nil),
		"JSON, not envelope": message.NewMessage("1", []byte(`{"user_id":1}`)),
		"metadata but no envelope": func() *message.Message {
			wm := message.NewMessage("1", []byte(`{"user_id":1}`))
			wm.Metadata.Set(marshaler.MetadataID, "1")
			wm.Metadata.Set(marshaler.MetadataType, "user.created")
			return wm
		}(),
		"invalid envelope": message.NewMessage("1", []byte(strings.Replace(seedPayload, "user.created", "user created", 1))),
	}
	for name, wm := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := marshaler.Default().Marshal("auth.user.created", wm)
			assert.ErrorIs(t, err, marshaler.ErrNotAnEvent)
		})
	}
	_, err := mustNew(t, marshaler.Config{MaxSize: 100}).Marshal("s", message.NewMessage("1", []byte(seedPayload)))
	assert.ErrorIs(t, err, marshaler.ErrNotAnEvent)
	assert.ErrorIs(t, err, envelope.ErrTooLarge)
}

func TestMarshal_metadata_that_cannot_be_a_header_is_ErrInvalidMetadata(t *testing.T) {
	tests := []struct{ key, value string }{
		{"X-Note", "line\r\nbreak"},
		{"X-Note", "line\nbreak"},
		{"X-Note", "nul\x00"},
		{"X-Note", " leading blank"},
		{"X-Note", "trailing tab\t"},
		{"X Note", "key with a space"},
		{"X-Note:", "key with a colon"},
		{"X-Nöte", "key not ASCII"},
		{"X-Note\r\nInjected", "key with CRLF"},
		{"ce-ext\r\n", "ce key with CRLF"},
		{"ce-ext", "ce value not UTF-8 \xff"},
		{"", "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			wm := message.NewMessage("1", []byte(seedPayload))
			wm.Metadata.Set(tt.key, tt.value)
			_, err := marshaler.Default().Marshal("s", wm)
			assert.ErrorIs(t, err, marshaler.ErrInvalidMetadata)
		})
	}

	wm := message.NewMessage("1", []byte(seedPayload))
	wm.Metadata.Set("ce-subject", "a")
	wm.Metadata.Set("CE-SUBJECT", "b")
	_, err := marshaler.Default().Marshal("s", wm)
	assert.ErrorIs(t, err, marshaler.ErrInvalidMetadata, "two spellings of one CloudEvents attribute")

	wm = message.NewMessage("1", []byte(seedPayload))
	wm.Metadata.Set(marshaler.MetadataCorrelationID, "\xff")
	_, err = marshaler.Default().Marshal("s", wm)
	assert.ErrorIs(t, err, marshaler.ErrInvalidMetadata)
}

func TestMarshal_ce_extension_values_are_percent_encoded_not_refused(t *testing.T) {
	wm := message.NewMessage("1", []byte(seedPayload))
	wm.Metadata.Set("ce-note", " line\r\nbreak ")
	nm, err := marshaler.Default().Marshal("s", wm)
	require.NoError(t, err)
	assert.Equal(t, "%20line%0D%0Abreak%20", nm.Header.Get("ce-note"))
	back, err := marshaler.Default().Unmarshal(nm)
	require.NoError(t, err)
	assert.Equal(t, " line\r\nbreak ", back.Metadata.Get("ce-note"))
}

func TestCorrelationID_watermill_metadata_maps_to_the_ce_header(t *testing.T) {
	assert.Equal(t, middleware.CorrelationIDMetadataKey, marshaler.MetadataCorrelationID)
	m := marshaler.Default()
	wm, err := m.ToMessage(seedEvent())
	require.NoError(t, err)
	// Watermill's correlation middleware and helpers use correlation_id.
	middleware.SetCorrelationID("corr-42", wm)
	wm.Metadata.Set(marshaler.MetadataCausationID, "cause-42")

	nm, err := m.Marshal("auth.user.created", wm)
	require.NoError(t, err)
	assert.Equal(t, "corr-42", nm.Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "cause-42", nm.Header.Get(marshaler.HeaderCausationID))
	assert.Empty(t, nm.Header.Get(marshaler.MetadataCorrelationID), "no raw correlation_id header")

	back, err := m.Unmarshal(nm)
	require.NoError(t, err)
	assert.Equal(t, "corr-42", middleware.MessageCorrelationID(back))
	assert.Equal(t, marshaler.Relations{CorrelationID: "corr-42", CausationID: "cause-42"}, marshaler.RelationsFromMessage(back))
}

func TestCorrelationID_from_the_ce_metadata_key_or_the_context(t *testing.T) {
	m := marshaler.Default()

	wm := message.NewMessage("1", []byte(seedPayload))
	wm.Metadata.Set(marshaler.HeaderCorrelationID, "from-ce-key")
	nm, err := m.Marshal("s", wm)
	require.NoError(t, err)
	assert.Equal(t, []string{"from-ce-key"}, nm.Header.Values(marshaler.HeaderCorrelationID))

	wm = message.NewMessage("1", []byte(seedPayload))
	ctx := envelope.WithCorrelationID(context.Background(), "from-ctx")
	ctx = envelope.WithCausationID(ctx, "cause-ctx")
	wm.SetContext(ctx)
	middleware.SetCorrelationID("from-metadata", wm) // metadata wins over the context
	nm, err = m.Marshal("s", wm)
	require.NoError(t, err)
	assert.Equal(t, "from-metadata", nm.Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "cause-ctx", nm.Header.Get(marshaler.HeaderCausationID))
}

func TestRelationsFromContext(t *testing.T) {
	ctx := envelope.WithCausationID(envelope.WithCorrelationID(context.Background(), "c"), "d")
	assert.Equal(t, marshaler.Relations{CorrelationID: "c", CausationID: "d"}, marshaler.RelationsFromContext(ctx))
	assert.Equal(t, marshaler.Relations{}, marshaler.RelationsFromContext(context.Background()))
}

func TestToMessage_and_FromMessage(t *testing.T) {
	m := marshaler.Default()
	e := seedEvent()
	wm, err := m.ToMessage(e)
	require.NoError(t, err)
	assert.Equal(t, testID, wm.UUID)
	assert.Equal(t, seedPayload, string(wm.Payload))
	assert.Equal(t, "user.created", wm.Metadata.Get(marshaler.MetadataType))
	assert.Equal(t, testTime, wm.Metadata.Get(marshaler.MetadataTime))
	assert.Equal(t, "org-123", wm.Metadata.Get(marshaler.MetadataOrganization))

	got, err := m.FromMessage(wm)
	require.NoError(t, err)
	assert.Equal(t, e, got)

	noOrg := seedEvent()
	noOrg.OrganizationID = ""
	wm, err = m.ToMessage(noOrg)
	require.NoError(t, err)
	_, has := wm.Metadata[marshaler.MetadataOrganization]
	assert.False(t, has, "no organization, no metadata key")

	_, err = m.ToMessage(&envelope.Event{})
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
}

func TestFromMessage_failures_are_typed(t *testing.T) {
	m := marshaler.Default()
	tests := map[string]struct {
		payload string
		want    error
	}{
		"not JSON":       {`hello`, envelope.ErrMalformed},
		"truncated":      {seedPayload[:40], envelope.ErrMalformed},
		"invalid UTF-8":  {strings.Replace(seedPayload, "admin", "adm\xffn", 1), envelope.ErrInvalidUTF8},
		"id is a number": {strings.Replace(seedPayload, `"`+testID+`"`, `5`, 1), envelope.ErrMalformed},
		"invalid event":  {strings.Replace(seedPayload, `"user.created"`, `""`, 1), envelope.ErrMissingType},
		"schema 2.0":     {strings.Replace(seedPayload, `"1.0"`, `"2.0"`, 1), marshaler.ErrUnknownSchemaMajor},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := m.FromMessage(message.NewMessage("1", []byte(tt.payload)))
			assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	_, err := mustNew(t, marshaler.Config{MaxSize: 100}).FromMessage(message.NewMessage("1", []byte(seedPayload)))
	assert.ErrorIs(t, err, envelope.ErrTooLarge)
}

func TestNew_validates_config(t *testing.T) {
	for name, cfg := range map[string]marshaler.Config{
		"negative MaxSize":   {MaxSize: -1},
		"empty SchemaMajors": {SchemaMajors: []int{}},
		"negative major":     {SchemaMajors: []int{-1}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := marshaler.New(cfg)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		})
	}
	cfg := marshaler.Default().Config()
	assert.Equal(t, envelope.DefaultMaxSize, cfg.MaxSize)
	assert.Equal(t, []int{1}, cfg.SchemaMajors)
	assert.Equal(t, envelope.SystemClock{}, cfg.Clock)

	majors := []int{1, 2}
	m := mustNew(t, marshaler.Config{SchemaMajors: majors})
	majors[1] = 3 // the Marshaler keeps its own copy
	assert.Equal(t, []int{1, 2}, m.Config().SchemaMajors)
}

// TestAdapters_over_a_real_server sends events through core NATS and a
// JetStream stream and reads them with the watermill-nats adapters.
func TestAdapters_over_a_real_server(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := marshaler.Default()
	e := seedEvent()
	e.Source = "auth service ✓"
	rel := marshaler.Relations{CorrelationID: "corr 1", CausationID: "cause 1"}

	t.Run("NATS", func(t *testing.T) {
		sub, err := srv.Conn.SubscribeSync("core.user.created")
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		nm, err := m.EventToNATS("core.user.created", e, rel)
		require.NoError(t, err)
		require.NoError(t, srv.Conn.PublishMsg(nm))

		got, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		wm, err := marshaler.NATS{Marshaler: m}.Unmarshal(got)
		require.NoError(t, err)
		assertEventMessage(t, m, e, wm)
	})

	t.Run("JetStream", func(t *testing.T) {
		_, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}})
		require.NoError(t, err)
		// Watermill -> NATS with Marshal, then a pull consumer.
		wm, err := m.ToMessage(e)
		require.NoError(t, err)
		marshaler.SetRelations(wm, rel)
		nm, err := marshaler.NATS{Marshaler: m}.Marshal("auth.user.created", wm)
		require.NoError(t, err)
		_, err = srv.JS.PublishMsg(ctx, nm)
		require.NoError(t, err)

		cons, err := srv.JS.CreateConsumer(ctx, "AUTH_EVENTS", jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		var got jetstream.Msg
		for msg := range batch.Messages() {
			got = msg
		}
		require.NoError(t, batch.Error())
		require.NotNil(t, got)
		back, err := marshaler.JetStream{Marshaler: m}.Unmarshal(got)
		require.NoError(t, err)
		assertEventMessage(t, m, e, back)
		require.NoError(t, got.Ack())
	})
}

func assertEventMessage(t *testing.T, m *marshaler.Marshaler, want *envelope.Event, wm *message.Message) {
	t.Helper()
	assert.Equal(t, want.ID, wm.UUID)
	assert.Equal(t, "corr 1", wm.Metadata.Get(marshaler.MetadataCorrelationID))
	assert.Equal(t, "cause 1", wm.Metadata.Get(marshaler.MetadataCausationID))
	assert.Equal(t, want.Source, wm.Metadata.Get(marshaler.MetadataSource))
	got, err := m.FromMessage(wm)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	data, err := got.DataMap()
	require.NoError(t, err)
	assert.Equal(t, json.Number("12345"), data["user_id"])
}

func TestMarshal_does_not_write_process_local_marks_as_headers(t *testing.T) {
	m := marshaler.Default()
	wm, err := m.ToMessage(seedEvent())
	require.NoError(t, err)
	// What a consumed message carries when a handler republishes it: the
	// subscriber's delivery metadata and marks, the dead-letterer's marks.
	local := map[string]string{
		"js-stream": "AUTH_EVENTS", "js-consumer": "users", "js-stream-seq": "7", "js-consumer-seq": "9",
		"js-delivery-attempt": "3", "js-subject": "auth.user.created",
		"js-terminate": "permanent", "js-nak-delay": "1h", "JS-Custom": "x",
		"dlq-reason": "permanent", "dlq-subject": "dlq.auth.user.created", "dlq-error": "boom",
	}
	kept := map[string]string{"Dlq-Reason": "max_deliver", "Dlq-Original-Subject": "auth.user.created", "dlq-other": "y", "X-Tenant": "eu"}
	for k, v := range local {
		wm.Metadata.Set(k, v)
	}
	for k, v := range kept {
		wm.Metadata.Set(k, v)
	}

	nm, err := m.Marshal("auth.user.created", wm)
	require.NoError(t, err)
	for k := range local {
		assert.NotContains(t, nm.Header, k)
	}
	for k := range nm.Header {
		assert.False(t, strings.HasPrefix(strings.ToLower(k), "js-"), "%s written as a header", k)
	}
	for k, v := range kept {
		assert.Equal(t, v, nm.Header.Get(k), k)
	}

	// Round trip: the kept keys come back, the local ones do not.
	back, err := m.Unmarshal(nm)
	require.NoError(t, err)
	for k, v := range kept {
		assert.Equal(t, v, back.Metadata.Get(k), k)
	}
	for k := range local {
		assert.NotContains(t, back.Metadata, k)
	}
}
