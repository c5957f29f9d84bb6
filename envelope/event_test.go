package envelope_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
)

// resourceData and timeManager mirror the seed's service code, so that the
// call below is the seed's, character for character.
type resourceData struct{ OrganizationID string }

type resource struct{ ID, Type string }

func TestNewEvent_compiles_exactly_as_the_seed_calls_it(t *testing.T) {
	testTime := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	timeManager := envelope.ClockFunc(func() time.Time { return testTime })
	data := &resourceData{OrganizationID: "org-123"}
	resource := resource{ID: "res-1", Type: "bucket"}

	event := envelope.NewEvent(
		"resource.created",
		"my-service",
		data.OrganizationID,
		timeManager.Now(),
		map[string]interface{}{
			"resource_id": resource.ID,
			"type":        resource.Type,
		},
	)

	require.NoError(t, event.Validate())
	assert.Equal(t, "resource.created", event.Type)
	assert.Equal(t, "my-service", event.Source)
	assert.Equal(t, "org-123", event.OrganizationID)
	assert.True(t, event.Timestamp.Equal(testTime))
	assert.Equal(t, "1.0", event.SchemaVersion)
	assert.JSONEq(t, `{"resource_id":"res-1","type":"bucket"}`, string(event.Data))
}

func TestNewEvent_schema_version_defaults_to_1_0(t *testing.T) {
	e := envelope.NewEvent("user.created", "auth-service", "", time.Now(), nil)
	assert.Equal(t, "1.0", e.SchemaVersion)
	assert.Equal(t, envelope.DefaultSchemaVersion, e.SchemaVersion)

	typed, err := envelope.NewWithData("user.created", "auth-service", "", time.Now(), struct{}{})
	require.NoError(t, err)
	assert.Equal(t, "1.0", typed.SchemaVersion)
}

func TestNewEvent_ids_are_unique_random_UUIDs(t *testing.T) {
	// A fixed clock: ids must not depend on the time (the reason for v4).
	ts := time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)
	seen := make(map[string]bool)
	for range 10000 {
		e := envelope.NewEvent("user.created", "auth-service", "org-123", ts, nil)
		id, err := uuid.Parse(e.ID)
		require.NoError(t, err)
		assert.Equal(t, uuid.Version(4), id.Version())
		assert.Equal(t, uuid.RFC4122, id.Variant())
		require.False(t, seen[e.ID], "duplicate id %s", e.ID)
		seen[e.ID] = true
	}
}

func TestNewEvent_timestamp_in_another_zone_encodes_in_UTC(t *testing.T) {
	zones := []*time.Location{
		time.FixedZone("CET", 3600),
		time.FixedZone("PDT", -7*3600),
		time.FixedZone("IST", 5*3600+1800),
	}
	for _, z := range zones {
		t.Run(z.String(), func(t *testing.T) {
			local := time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC).In(z)
			e := envelope.NewEvent("user.created", "auth-service", "org-123", local, nil)

			b, err := e.Encode(0)
			require.NoError(t, err)
			var wire map[string]any
			require.NoError(t, json.Unmarshal(b, &wire))
			assert.Equal(t, "2024-01-15T10:30:45Z", wire["timestamp"])
			assert.Equal(t, time.UTC, e.Timestamp.Location())
		})
	}
}

func TestFormatTime_writes_fractional_seconds_only_when_there_are_any(t *testing.T) {
	assert.Equal(t, "2024-01-15T10:30:45Z", envelope.FormatTime(time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)))
	assert.Equal(t, "2024-01-15T10:30:45.5Z", envelope.FormatTime(time.Date(2024, 1, 15, 10, 30, 45, 5e8, time.UTC)))
	assert.Equal(t, "2024-01-15T10:30:45.000000001Z", envelope.FormatTime(time.Date(2024, 1, 15, 10, 30, 45, 1, time.UTC)))
}

func TestClock_injected_clock_stamps_the_event(t *testing.T) {
	fixed := time.Date(2030, 6, 1, 8, 0, 0, 0, time.UTC)
	var clock envelope.Clock = envelope.ClockFunc(func() time.Time { return fixed })

	e := envelope.NewEvent("user.created", "auth-service", "org-123", clock.Now(), nil)
	assert.True(t, e.Timestamp.Equal(fixed))

	var sys envelope.Clock = envelope.SystemClock{}
	before := time.Now()
	got := sys.Now()
	assert.False(t, got.Before(before), "SystemClock reads the wall clock")
}

// userCreated is a typed payload: ints must stay ints, through the wire.
type userCreated struct {
	UserID  int               `json:"user_id"`
	Big     int64             `json:"big"`
	Max     uint64            `json:"max"`
	Ratio   float64           `json:"ratio"`
	Email   string            `json:"email"`
	Roles   []string          `json:"roles"`
	Labels  map[string]string `json:"labels"`
	Deleted *time.Time        `json:"deleted"`
}

func TestNewWithData_struct_decodes_back_exactly_after_the_wire(t *testing.T) {
	in := userCreated{
		UserID: 12345,
		Big:    9007199254740993, // 2^53 + 1: not representable as float64
		Max:    math.MaxUint64,
		Ratio:  0.1,
		Email:  "user@example.com",
		Roles:  []string{"admin", "dev"},
		Labels: map[string]string{"team": "core"},
	}
	e, err := envelope.NewWithData("user.created", "auth-service", "org-123", time.Now(), in)
	require.NoError(t, err)

	wire, err := e.Encode(0)
	require.NoError(t, err)
	got, err := envelope.Decode(wire, 0)
	require.NoError(t, err)

	var out userCreated
	require.NoError(t, got.DecodeData(&out))
	assert.Equal(t, in, out)
	assert.Equal(t, int64(9007199254740993), out.Big)
}

func TestNewWithData_refuses_data_that_is_not_JSON(t *testing.T) {
	_, err := envelope.NewWithData("user.created", "auth-service", "", time.Now(), make(chan int))
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrDataNotJSON)
}

func TestDataMap_keeps_numbers_as_json_Number(t *testing.T) {
	wire := `{"id":"1","type":"user.created","source":"s","organization_id":"","timestamp":"2024-01-15T10:30:45Z",` +
		`"schema_version":"1.0","data":{"user_id":12345,"big":9007199254740993,"ratio":0.1,"nested":{"n":-7}}}`
	e, err := envelope.Decode([]byte(wire), 0)
	require.NoError(t, err)

	m, err := e.DataMap()
	require.NoError(t, err)
	assert.Equal(t, json.Number("12345"), m["user_id"])
	assert.Equal(t, json.Number("9007199254740993"), m["big"])
	assert.Equal(t, json.Number("0.1"), m["ratio"])
	assert.Equal(t, map[string]any{"n": json.Number("-7")}, m["nested"])
	big, err := m["big"].(json.Number).Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(9007199254740993), big)
}

func TestDataMap_of_null_or_absent_data_is_nil(t *testing.T) {
	for _, data := range []json.RawMessage{nil, json.RawMessage("null")} {
		e := &envelope.Event{Data: data}
		m, err := e.DataMap()
		require.NoError(t, err)
		assert.Nil(t, m)
	}
}

func TestDecodeData_into_the_wrong_shape_is_ErrDataDecode(t *testing.T) {
	e := &envelope.Event{ID: "1", Type: "user.created", Data: json.RawMessage(`{"user_id":"not a number"}`)}
	var out userCreated
	err := e.DecodeData(&out)
	assert.ErrorIs(t, err, envelope.ErrDataDecode)

	m, err := (&envelope.Event{Data: json.RawMessage(`[1,2]`)}).DataMap()
	assert.ErrorIs(t, err, envelope.ErrDataDecode)
	assert.Nil(t, m)
}

func TestDecodeData_of_an_event_whose_data_failed_to_encode(t *testing.T) {
	e := envelope.NewEvent("user.created", "s", "", time.Now(), map[string]interface{}{"f": func() {}})
	var out map[string]any
	assert.ErrorIs(t, e.DecodeData(&out), envelope.ErrDataNotJSON)
}

func TestSetData_replaces_the_data_and_clears_an_earlier_failure(t *testing.T) {
	e := envelope.NewEvent("user.created", "s", "", time.Now(), map[string]interface{}{"c": make(chan int)})
	require.ErrorIs(t, e.Validate(), envelope.ErrDataNotJSON)

	require.NoError(t, e.SetData(map[string]int{"n": 1}))
	require.NoError(t, e.Validate())
	assert.JSONEq(t, `{"n":1}`, string(e.Data))

	err := e.SetData(math.NaN())
	assert.ErrorIs(t, err, envelope.ErrDataNotJSON)
	assert.JSONEq(t, `{"n":1}`, string(e.Data), "a failed SetData leaves the event unchanged")
}

func TestSchemaMajor(t *testing.T) {
	for v, want := range map[string]int{"1.0": 1, "2.13": 2, "0.1": 0, "10.0": 10} {
		got, err := (&envelope.Event{SchemaVersion: v}).SchemaMajor()
		require.NoError(t, err, v)
		assert.Equal(t, want, got, v)
	}
	_, err := (&envelope.Event{SchemaVersion: "v1"}).SchemaMajor()
	assert.ErrorIs(t, err, envelope.ErrInvalidSchemaVersion)
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
}

func TestClone_is_deep(t *testing.T) {
	e := envelope.NewEvent("user.created", "s", "", time.Now(), map[string]interface{}{"a": 1})
	c := e.Clone()
	assert.Equal(t, e, c)
	c.Data[1] = 'X'
	c.Type = "other"
	assert.JSONEq(t, `{"a":1}`, string(e.Data))
	assert.Equal(t, "user.created", e.Type)
}

func TestDecodeData_keeps_ints_exact_in_typed_fields_and_numbers_as_json_Number_under_interfaces(t *testing.T) {
	e, err := envelope.NewWithData("user.created", "auth-service", "org-1", time.Unix(0, 0), map[string]any{
		"big": json.Number("9007199254740993"), "extra": map[string]any{"n": json.Number("7")},
	})
	require.NoError(t, err)
	type typed struct {
		Big int64 `json:"big"`
	}
	type mixed struct {
		Big   int64 `json:"big"`
		Extra any   `json:"extra"`
	}
	tests := []struct {
		name string
		into any
		want any
	}{
		{"typed struct", &typed{}, &typed{Big: 9007199254740993}},
		{"struct with an interface field", &mixed{}, &mixed{Big: 9007199254740993, Extra: map[string]any{"n": json.Number("7")}}},
		{"pointer to pointer", new(*typed), func() any { p := &typed{Big: 9007199254740993}; return &p }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, e.DecodeData(tt.into))
			assert.Equal(t, tt.want, tt.into)
		})
	}
}
