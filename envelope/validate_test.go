package envelope_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
)

func validEvent() *envelope.Event {
	return &envelope.Event{
		ID:             "550e8400-e29b-41d4-a716-446655440000",
		Type:           "user.created",
		Source:         "auth-service",
		OrganizationID: "org-123",
		Timestamp:      time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC),
		SchemaVersion:  "1.0",
		Data:           json.RawMessage(`{"user_id":12345}`),
	}
}

func TestValidate_one_rule_per_row(t *testing.T) {
	tests := []struct {
		name   string
		event  func() *envelope.Event
		rule   error
		maxLen int // 0: Validate (default max), else ValidateSize(maxLen)
	}{
		{"empty id", func() *envelope.Event { e := validEvent(); e.ID = ""; return e }, envelope.ErrMissingID, 0},
		{"empty type", func() *envelope.Event { e := validEvent(); e.Type = ""; return e }, envelope.ErrMissingType, 0},
		{"empty source", func() *envelope.Event { e := validEvent(); e.Source = ""; return e }, envelope.ErrMissingSource, 0},
		{"type with a space", func() *envelope.Event { e := validEvent(); e.Type = "user created"; return e }, envelope.ErrInvalidType, 0},
		{"type with a trailing space", func() *envelope.Event { e := validEvent(); e.Type = "user.created "; return e }, envelope.ErrInvalidType, 0},
		{"type with *", func() *envelope.Event { e := validEvent(); e.Type = "user.*"; return e }, envelope.ErrInvalidType, 0},
		{"type with >", func() *envelope.Event { e := validEvent(); e.Type = "user.>"; return e }, envelope.ErrInvalidType, 0},
		{"type with an empty token", func() *envelope.Event { e := validEvent(); e.Type = "user..created"; return e }, envelope.ErrInvalidType, 0},
		{"type with a leading dot", func() *envelope.Event { e := validEvent(); e.Type = ".user"; return e }, envelope.ErrInvalidType, 0},
		{"type with a trailing dot", func() *envelope.Event { e := validEvent(); e.Type = "user."; return e }, envelope.ErrInvalidType, 0},
		{"type with a slash", func() *envelope.Event { e := validEvent(); e.Type = "user/created"; return e }, envelope.ErrInvalidType, 0},
		{"type not ASCII", func() *envelope.Event { e := validEvent(); e.Type = "usér.created"; return e }, envelope.ErrInvalidType, 0},
		{"zero timestamp", func() *envelope.Event { e := validEvent(); e.Timestamp = time.Time{}; return e }, envelope.ErrMissingTimestamp, 0},
		{"timestamp after year 9999", func() *envelope.Event {
			e := validEvent()
			e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return e
		}, envelope.ErrInvalidTimestamp, 0},
		{"timestamp before year 0", func() *envelope.Event {
			e := validEvent()
			e.Timestamp = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
			return e
		}, envelope.ErrInvalidTimestamp, 0},
		{"empty schema version", func() *envelope.Event { e := validEvent(); e.SchemaVersion = ""; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version without minor", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "1"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with patch", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "1.0.0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with v", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "v1.0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with sign", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "-1.0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with leading zero", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "01.0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with empty minor", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "1."; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with empty major", func() *envelope.Event { e := validEvent(); e.SchemaVersion = ".1"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version with space", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "1. 0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"schema version too long", func() *envelope.Event { e := validEvent(); e.SchemaVersion = "1234567890.0"; return e }, envelope.ErrInvalidSchemaVersion, 0},
		{"data with a chan (NewEvent)", func() *envelope.Event {
			return envelope.NewEvent("user.created", "s", "", time.Now(), map[string]interface{}{"c": make(chan int)})
		}, envelope.ErrDataNotJSON, 0},
		{"data with a func (NewEvent)", func() *envelope.Event {
			return envelope.NewEvent("user.created", "s", "", time.Now(), map[string]interface{}{"f": func() {}})
		}, envelope.ErrDataNotJSON, 0},
		{"raw data that is not JSON", func() *envelope.Event { e := validEvent(); e.Data = json.RawMessage(`{"a":}`); return e }, envelope.ErrDataNotJSON, 0},
		{"raw data with two values", func() *envelope.Event { e := validEvent(); e.Data = json.RawMessage(`1 2`); return e }, envelope.ErrDataNotJSON, 0},
		{"raw data in invalid UTF-8", func() *envelope.Event { e := validEvent(); e.Data = json.RawMessage("\"\xff\""); return e }, envelope.ErrInvalidUTF8, 0},
		{"id in invalid UTF-8", func() *envelope.Event { e := validEvent(); e.ID = "id-\xff"; return e }, envelope.ErrInvalidUTF8, 0},
		{"source in invalid UTF-8", func() *envelope.Event { e := validEvent(); e.Source = "svc-\xc3"; return e }, envelope.ErrInvalidUTF8, 0},
		{"organization in invalid UTF-8", func() *envelope.Event { e := validEvent(); e.OrganizationID = "\xed\xa0\x80"; return e }, envelope.ErrInvalidUTF8, 0},
		{"size over the default max", func() *envelope.Event {
			e := validEvent()
			e.Data = json.RawMessage(`"` + strings.Repeat("x", envelope.DefaultMaxSize) + `"`)
			return e
		}, envelope.ErrTooLarge, 0},
		{"size over a configured max", validEvent, envelope.ErrTooLarge, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			var err error
			if tt.maxLen == 0 {
				err = e.Validate()
			} else {
				err = e.ValidateSize(tt.maxLen)
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
			assert.ErrorIs(t, err, tt.rule)
		})
	}
}

func TestValidate_accepts_the_edges_of_each_rule(t *testing.T) {
	tests := []struct {
		name string
		edit func(*envelope.Event)
	}{
		{"one-token type", func(e *envelope.Event) { e.Type = "created" }},
		{"type with _ and -", func(e *envelope.Event) { e.Type = "user_account.role-updated.V2" }},
		{"empty organization", func(e *envelope.Event) { e.OrganizationID = "" }},
		{"non-ASCII source", func(e *envelope.Event) { e.Source = "sérvice ✓" }},
		{"any string as id", func(e *envelope.Event) { e.ID = "order 42/\r\n" }},
		{"schema 0.0", func(e *envelope.Event) { e.SchemaVersion = "0.0" }},
		{"schema 123456789.987654321", func(e *envelope.Event) { e.SchemaVersion = "123456789.987654321" }},
		{"nil data", func(e *envelope.Event) { e.Data = nil }},
		{"scalar data", func(e *envelope.Event) { e.Data = json.RawMessage(`42`) }},
		{"data with surrounding space", func(e *envelope.Event) { e.Data = json.RawMessage(" {\"a\": [1, 2.5e3, true, null]} \n") }},
		{"year 0000", func(e *envelope.Event) { e.Timestamp = time.Date(0, 1, 1, 0, 0, 1, 0, time.UTC) }},
		{"year 9999 in another zone", func(e *envelope.Event) {
			e.Timestamp = time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("X", 5*3600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.edit(e)
			require.NoError(t, e.Validate())
			// And a valid event always survives the wire.
			b, err := e.Encode(0)
			require.NoError(t, err)
			got, err := envelope.Decode(b, 0)
			require.NoError(t, err)
			again, err := got.Encode(0)
			require.NoError(t, err)
			assert.Equal(t, string(b), string(again))
			assert.True(t, got.Timestamp.Equal(e.Timestamp))
		})
	}
}

func TestValidateSize_limit_is_the_encoded_length(t *testing.T) {
	e := validEvent()
	b, err := e.Encode(0)
	require.NoError(t, err)
	assert.Equal(t, len(b), e.EncodedLen())
	assert.NoError(t, e.ValidateSize(len(b)))
	assert.ErrorIs(t, e.ValidateSize(len(b)-1), envelope.ErrTooLarge)
	assert.NoError(t, e.ValidateSize(0), "0 means no limit")
	assert.NoError(t, e.ValidateSize(-1), "negative means no limit")
}

func TestValidateSubject(t *testing.T) {
	tests := []struct {
		subject string
		ok      bool
	}{
		{"auth.user.created", true},
		{"auth", true},
		{"my-service.resource_created.v2", true},
		{"AUTH.User.Created", true},
		{"", false},
		{"auth.*", false},
		{"auth.>", false},
		{"*", false},
		{">", false},
		{"auth..user", false},
		{".auth", false},
		{"auth.", false},
		{"auth user", false},
		{"auth.user\t", false},
		{"auth.user\r\n", false},
		{"auth.usér", false},
		{"auth/user", false},
		{"auth.us$er", false},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			err := envelope.ValidateSubject(tt.subject)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, envelope.ErrInvalidSubject)
		})
	}
}

func TestValidToken(t *testing.T) {
	assert.True(t, envelope.ValidToken("user_created-2"))
	for _, s := range []string{"", "a.b", "a b", "*", ">", "é"} {
		assert.False(t, envelope.ValidToken(s), s)
	}
}
