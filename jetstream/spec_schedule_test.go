package jetstream_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

func TestParseSpecs_reads_schedule_and_atomic_settings(t *testing.T) {
	specs, err := jetstream.ParseSpecs([]byte(`
streams:
  - name: BILLING
    subjects: ["billing.>"]
    allow_msg_ttl: true
    allow_msg_schedules: true
    allow_atomic: true
`))
	require.NoError(t, err)
	require.Len(t, specs.Streams, 1)
	s := specs.Streams[0]
	assert.True(t, s.AllowMsgTTL)
	assert.True(t, s.AllowMsgSchedules)
	assert.True(t, s.AllowAtomicPublish)
}

func TestStreamSpec_refuses_schedules_where_the_server_would(t *testing.T) {
	tests := []struct {
		name string
		spec jetstream.StreamSpec
	}{
		{"schedules on a mirror", jetstream.StreamSpec{Name: "M", Mirror: &jetstream.StreamSourceSpec{Name: "O"}, AllowMsgSchedules: true}},
		{"schedules with sources", jetstream.StreamSpec{Name: "S", Subjects: []string{"s.>"}, Sources: []jetstream.StreamSourceSpec{{Name: "O"}}, AllowMsgSchedules: true}},
		{"atomic on a mirror", jetstream.StreamSpec{Name: "M", Mirror: &jetstream.StreamSourceSpec{Name: "O"}, AllowAtomicPublish: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
		})
	}
	assert.NoError(t, jetstream.StreamSpec{Name: "S", Subjects: []string{"s.>"}, Sources: []jetstream.StreamSourceSpec{{Name: "O"}}, AllowAtomicPublish: true}.Validate())
}

func TestApply_turning_schedules_and_atomic_on_updates_the_stream(t *testing.T) {
	srv := eventstest.NewServer(t)
	spec := jetstream.StreamSpec{Name: "BILLING", Subjects: []string{"billing.>"}}
	_, err := jetstream.Apply(pubCtx(t), srv.JS, spec)
	require.NoError(t, err)

	spec.AllowMsgSchedules, spec.AllowAtomicPublish = true, true
	ch, err := jetstream.Apply(pubCtx(t), srv.JS, spec)
	require.NoError(t, err)
	require.Len(t, ch, 1)
	assert.Equal(t, jetstream.Updated, ch[0].Action)
	var fields []string
	for _, f := range ch[0].Fields {
		fields = append(fields, f.Field)
	}
	assert.ElementsMatch(t, []string{"subjects", "allow_msg_schedules", "allow_atomic"}, fields)
	st, err := srv.JS.Stream(pubCtx(t), "BILLING")
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	assert.Equal(t, []string{"billing.>", "_schedule.billing.>"}, cfg.Subjects)
	assert.True(t, cfg.AllowMsgSchedules)
	assert.True(t, cfg.AllowAtomicPublish)

	ch, err = jetstream.Apply(pubCtx(t), srv.JS, spec)
	require.NoError(t, err)
	assert.False(t, ch.Changed(), "%s", ch)
}
