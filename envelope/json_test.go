package envelope_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
)

// seedJSON is the event of the seed examples' "Event Structure" section,
// copied verbatim into testdata.
func seedJSON(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/seed_event.json")
	require.NoError(t, err)
	return b
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, b))
	return buf.Bytes()
}

func TestSeedJSON_round_trips_byte_for_byte(t *testing.T) {
	seed := compact(t, seedJSON(t))

	e, err := envelope.Decode(seed, 0)
	require.NoError(t, err)
	out, err := e.Encode(0)
	require.NoError(t, err)
	assert.Equal(t, string(seed), string(out))

	// json.Marshal goes through MarshalJSON, of a pointer and of a value.
	viaPtr, err := json.Marshal(e)
	require.NoError(t, err)
	assert.Equal(t, string(seed), string(viaPtr))
	viaValue, err := json.Marshal(*e)
	require.NoError(t, err)
	assert.Equal(t, string(seed), string(viaValue))
}

func TestSeedJSON_pretty_printed_decodes_to_the_same_event(t *testing.T) {
	pretty := seedJSON(t)
	var e envelope.Event
	require.NoError(t, json.Unmarshal(pretty, &e))
	require.NoError(t, e.Validate())

	assert.Equal(t, "550e8400-e29b-41d4-a716-446655440000", e.ID)
	assert.Equal(t, "user.created", e.Type)
	assert.Equal(t, "auth-service", e.Source)
	assert.Equal(t, "org-123", e.OrganizationID)
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), e.Timestamp)
	assert.Equal(t, "1.0", e.SchemaVersion)

	out, err := e.Encode(0)
	require.NoError(t, err)
	assert.Equal(t, string(compact(t, pretty)), string(compact(t, out)))

	// Field names in order, the timestamp's text and the numbers' text.
	s := string(out)
	keys := []string{`"id":`, `"type":`, `"source":`, `"organization_id":`, `"timestamp":`, `"schema_version":`, `"data":`}
	last := -1
	for _, k := range keys {
		i := strings.Index(s, k)
		require.Greater(t, i, last, "key %s out of order in %s", k, s)
		last = i
	}
	assert.Contains(t, s, `"timestamp":"2024-01-15T10:30:45Z"`)
	assert.Contains(t, s, `"user_id": 12345`, "data bytes are kept as received")
	assert.Contains(t, s, `"schema_version":"1.0"`)
}

func TestSeedJSON_built_with_NewEvent_encodes_as_the_seed(t *testing.T) {
	ts := time.Date(2024, 1, 15, 12, 30, 45, 0, time.FixedZone("CEST", 2*3600))
	e := envelope.NewEvent("user.created", "auth-service", "org-123", ts, map[string]interface{}{
		"user_id": 12345, "email": "user@example.com", "role": "admin",
	})
	e.ID = "550e8400-e29b-41d4-a716-446655440000"
	out, err := e.Encode(0)
	require.NoError(t, err)
	// encoding/json sorts map keys; the seed's data order differs, not its content.
	assert.JSONEq(t, string(seedJSON(t)), string(out))
	assert.Contains(t, string(out), `"timestamp":"2024-01-15T10:30:45Z"`)
	assert.Contains(t, string(out), `"user_id":12345`)
}

func TestEncode_escapes_strings_and_decodes_them_back(t *testing.T) {
	e := validEvent()
	e.Source = "q\"uote \\ back\nnew\tline \x01 ctl \u2028 sep <html> & é ✓ 😀"
	e.OrganizationID = ""
	out, err := e.Encode(0)
	require.NoError(t, err)
	require.True(t, json.Valid(out))
	assert.NotContains(t, string(out), "\u2028", "U+2028 is escaped for JavaScript readers")

	var std map[string]any
	require.NoError(t, json.Unmarshal(out, &std))
	assert.Equal(t, e.Source, std["source"])

	got, err := envelope.Decode(out, 0)
	require.NoError(t, err)
	assert.Equal(t, e.Source, got.Source)
	assert.Equal(t, e.EncodedLen(), len(out))
}

func TestUnmarshalJSON_reads_escapes_as_encoding_json_does(t *testing.T) {
	in := `{"id":"\u0031\/2","type":"user.created","source":"caf\u00e9 \ud83d\ude00 \ud800 lone \"q\" \\ \b\f\n\r\t",` +
		`"organization_id":null,"timestamp":"2024-01-15T10:30:45.123+02:00","schema_version":"1.0","data":null}`
	var got envelope.Event
	require.NoError(t, json.Unmarshal([]byte(in), &got))

	var std struct{ ID, Source string }
	require.NoError(t, json.Unmarshal([]byte(in), &std))
	assert.Equal(t, std.ID, got.ID)
	assert.Equal(t, std.Source, got.Source)
	assert.Equal(t, "", got.OrganizationID, "null reads as absent")
	assert.Equal(t, time.Date(2024, 1, 15, 8, 30, 45, 123e6, time.UTC), got.Timestamp)
	assert.Equal(t, json.RawMessage("null"), got.Data, "null data is kept so that re-encoding is exact")
}

func TestUnmarshalJSON_skips_unknown_keys(t *testing.T) {
	in := `{"id":"1","type":"user.created","future":{"a":[1,{"b":null}]},"source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":{}}`
	e, err := envelope.Decode([]byte(in), 0)
	require.NoError(t, err)
	assert.Equal(t, "s", e.Source)
}

func TestUnmarshalJSON_refuses_malformed_input(t *testing.T) {
	const ts = `"timestamp":"2024-01-15T10:30:45Z"`
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"not JSON", `hello`},
		{"an array", `[1,2]`},
		{"a string", `"id"`},
		{"null", `null`},
		{"truncated in a key", `{"id":"1","ty`},
		{"truncated in data", `{"id":"1","type":"a","data":{"user_id":123`},
		{"truncated after a comma", `{"id":"1",`},
		{"missing closing brace", `{"id":"1"`},
		{"trailing garbage", `{"id":"1"} x`},
		{"two objects", `{"id":"1"}{"id":"2"}`},
		{"id is a number", `{"id":5,"type":"a"}`},
		{"type is an object", `{"id":"1","type":{}}`},
		{"source is an array", `{"source":["a"]}`},
		{"organization is a boolean", `{"organization_id":true}`},
		{"schema_version is a number", `{"schema_version":1.0}`},
		{"timestamp is a number", `{"timestamp":123}`},
		{"timestamp is not RFC 3339", `{"timestamp":"15/01/2024 10:30"}`},
		{"timestamp without zone", `{"timestamp":"2024-01-15T10:30:45"}`},
		{"timestamp out of range", `{"timestamp":"2024-13-45T10:30:45Z"}`},
		{"duplicate key", `{"id":"1","id":"2"}`},
		{"duplicate data", `{"data":1,` + ts + `,"data":2}`},
		{"duplicate key through an escape", `{"id":"1","\u0069d":"2"}`},
		{"invalid UTF-8 in a string", "{\"source\":\"caf\xe9\"}"},
		{"invalid UTF-8 in data", "{\"data\":{\"k\":\"\xff\"}}"},
		{"UTF-16 surrogate encoded in UTF-8", "{\"source\":\"\xed\xa0\x80\"}"},
		{"control character in a string", "{\"source\":\"a\nb\"}"},
		{"bad escape", `{"source":"\x"}`},
		{"short unicode escape", `{"source":"\u12"}`},
		{"single quotes", `{'id':'1'}`},
		{"unquoted key", `{id:"1"}`},
		{"trailing comma", `{"id":"1",}`},
		{"bad number in data", `{"data":01}`},
		{"bad number in data 2", `{"data":1.}`},
		{"bad number in data 3", `{"data":-}`},
		{"bad number in data 4", `{"data":1e}`},
		{"bad literal in data", `{"data":tru}`},
		{"NaN in data", `{"data":NaN}`},
		{"nesting too deep", `{"data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e envelope.Event
			err := e.UnmarshalJSON([]byte(tt.in))
			require.Error(t, err)
			assert.ErrorIs(t, err, envelope.ErrMalformed)

			_, err = envelope.Decode([]byte(tt.in), 0)
			assert.ErrorIs(t, err, envelope.ErrMalformed)
		})
	}
}

func TestUnmarshalJSON_invalid_UTF8_matches_ErrInvalidUTF8(t *testing.T) {
	_, err := envelope.Decode([]byte("{\"id\":\"\xff\"}"), 0)
	assert.ErrorIs(t, err, envelope.ErrMalformed)
	assert.ErrorIs(t, err, envelope.ErrInvalidUTF8)
}

func TestUnmarshalJSON_keys_are_case_sensitive(t *testing.T) {
	// encoding/json would read "ID" into id; the envelope treats it as an
	// unknown key, so the event has no id and fails validation.
	in := `{"ID":"1","type":"user.created","source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0"}`
	_, err := envelope.Decode([]byte(in), 0)
	assert.ErrorIs(t, err, envelope.ErrMissingID)
}

func TestUnmarshalJSON_copies_data_and_Decode_aliases_it(t *testing.T) {
	in := []byte(`{"id":"1","type":"user.created","source":"s","timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":[1]}`)

	var copied envelope.Event
	require.NoError(t, json.Unmarshal(in, &copied))
	aliased, err := envelope.Decode(in, 0)
	require.NoError(t, err)

	in[len(in)-3] = '2' // the digit inside data
	assert.Equal(t, json.RawMessage("[1]"), copied.Data)
	assert.Equal(t, json.RawMessage("[2]"), aliased.Data)
}

func TestDecode_validates_and_limits_size(t *testing.T) {
	seed := compact(t, seedJSON(t))

	_, err := envelope.Decode(seed, len(seed)-1)
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrTooLarge)

	_, err = envelope.Decode(seed, len(seed))
	assert.NoError(t, err)

	invalid := bytes.Replace(seed, []byte(`"user.created"`), []byte(`"user.*"`), 1)
	_, err = envelope.Decode(invalid, 0)
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrInvalidType)
}

func TestMarshalJSON_refuses_data_that_is_not_JSON(t *testing.T) {
	e := validEvent()
	e.Data = json.RawMessage(`{"a":`)
	_, err := json.Marshal(e)
	assert.ErrorIs(t, err, envelope.ErrDataNotJSON)

	_, err = e.Encode(0)
	assert.ErrorIs(t, err, envelope.ErrDataNotJSON)
}

func TestParseTime_returns_UTC(t *testing.T) {
	got, err := envelope.ParseTime("2024-01-15T12:30:45+02:00")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), got)
	_, err = envelope.ParseTime("yesterday")
	assert.Error(t, err)
}
