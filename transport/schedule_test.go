package transport_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/transport"
)

var base = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC) // a Monday

func TestParseSchedule_next_times(t *testing.T) {
	tests := []struct {
		name, pattern, zone string
		from                time.Time
		want                time.Time
		repeats             bool
	}{
		{"at", "@at 2024-02-01T09:00:00Z", "", base, time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC), false},
		{"at with offset", "@at 2024-02-01T10:00:00+01:00", "", base, time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC), false},
		{"every", "@every 90s", "", base, base.Add(90 * time.Second), true},
		{"every rounds from to the second", "@every 1m", "", base.Add(400 * time.Millisecond), base.Add(time.Minute), true},
		{"every second", "* * * * * *", "", base, base.Add(time.Second), true},
		{"weekdays 09:30", "0 30 9 * * mon-fri", "", base, time.Date(2024, 1, 16, 9, 30, 0, 0, time.UTC), true},
		{"daily", "@daily", "", base, time.Date(2024, 1, 16, 0, 0, 0, 0, time.UTC), true},
		{"hourly", "@hourly", "", base, time.Date(2024, 1, 15, 11, 0, 0, 0, time.UTC), true},
		{"monthly", "@monthly", "", base, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{"step", "*/15 * * * * *", "", base, base.Add(15 * time.Second), true},
		{"list", "0 0 8,20 * * *", "", base, time.Date(2024, 1, 15, 20, 0, 0, 0, time.UTC), true},
		{"day of month or week", "0 0 0 1 * fri", "", base, time.Date(2024, 1, 19, 0, 0, 0, 0, time.UTC), true},
		{"time zone", "0 0 9 * * *", "Europe/Paris", base, time.Date(2024, 1, 16, 8, 0, 0, 0, time.UTC), true},
		{"leap day", "0 0 0 29 feb *", "", base, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := transport.ParseSchedule(tt.pattern, tt.zone)
			require.NoError(t, err)
			assert.Equal(t, tt.repeats, s.Repeats())
			got, err := s.Next(tt.from, tt.from)
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "next %s, want %s", got, tt.want)
		})
	}
}

func TestParseSchedule_repeating_schedule_skips_missed_times(t *testing.T) {
	s, err := transport.ParseSchedule("@hourly", "")
	require.NoError(t, err)
	// Stored at base, the server back three hours later: one firing, at
	// the next hour after now, not three.
	now := base.Add(3 * time.Hour)
	got, err := s.Next(base, now)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC), got)

	e, err := transport.ParseSchedule("@every 10s", "")
	require.NoError(t, err)
	got, err = e.Next(base, base.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, base.Add(70*time.Second), got)

	at, err := transport.ParseSchedule("@at 2024-01-01T00:00:00Z", "")
	require.NoError(t, err)
	got, err = at.Next(base, base)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), got, "a past one-shot time fires at once")
}

func TestParseSchedule_refuses_what_the_server_refuses(t *testing.T) {
	tests := []struct{ pattern, zone string }{
		{"", ""},
		{"* * * * *", ""},
		{"60 * * * * *", ""},
		{"* * 24 * * *", ""},
		{"* * * 0 * *", ""},
		{"* * * * 13 *", ""},
		{"* * * * * 7", ""},
		{"5-1 * * * * *", ""},
		{"*/0 * * * * *", ""},
		{"0 0 0 30 feb *", ""},
		{"@every 500ms", ""},
		{"@every forever", ""},
		{"@at tomorrow", ""},
		{"@at 2024-01-01T00:00:00Z", "Europe/Paris"},
		{"@daily", "Mars/Olympus"},
		{"@fortnightly", ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"/"+tt.zone, func(t *testing.T) {
			_, err := transport.ParseSchedule(tt.pattern, tt.zone)
			assert.ErrorIs(t, err, transport.ErrInvalidOption)
		})
	}
}

func TestResolvePublishOptions(t *testing.T) {
	at := base.Add(time.Hour)
	o, err := transport.ResolvePublishOptions([]transport.PublishOption{transport.At(at), transport.TTL(1500 * time.Millisecond), nil})
	require.NoError(t, err)
	assert.True(t, o.Scheduled())
	assert.False(t, o.Repeats())
	assert.Equal(t, time.Second, o.TTL, "whole seconds")
	assert.Equal(t, "@at 2024-01-15T11:30:45Z", o.Pattern(base))

	o, err = transport.ResolvePublishOptions([]transport.PublishOption{transport.After(24 * time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, "@at 2024-01-16T10:30:45Z", o.Pattern(base), "After counts from the publisher's clock")

	o, err = transport.ResolvePublishOptions([]transport.PublishOption{transport.Cron("0 0 9 * * *"), transport.InTimeZone("Europe/Paris")})
	require.NoError(t, err)
	assert.True(t, o.Repeats())
	assert.Equal(t, "0 0 9 * * *", o.Pattern(base))

	o, err = transport.ResolvePublishOptions(nil)
	require.NoError(t, err)
	assert.False(t, o.Scheduled())
	assert.Empty(t, o.Pattern(base))

	bad := [][]transport.PublishOption{
		{transport.At(time.Time{})},
		{transport.Cron("")},
		{transport.Cron("@every 1s")},
		{transport.Every(time.Second), transport.Cron("@daily")},
		{transport.InTimeZone("UTC")},
		{transport.ExpectLastSequence("", 1)},
		{transport.ExpectLastSequence("orders.>.x", 1)},
		{transport.ExpectLastSequence("orders .x", 1)},
		{transport.TTL(0)},
	}
	for i, opts := range bad {
		_, err := transport.ResolvePublishOptions(opts)
		assert.ErrorIs(t, err, transport.ErrInvalidOption, "case %d", i)
	}
}

func TestPublishOptions_apply_headers(t *testing.T) {
	o, err := transport.ResolvePublishOptions([]transport.PublishOption{
		transport.Cron("@daily"), transport.InTimeZone("Europe/Paris"), transport.TTL(time.Hour),
	})
	require.NoError(t, err)
	msg := &nats.Msg{Subject: "reports.daily", Header: nats.Header{"Nats-Msg-Id": {"id-1"}, "ce-id": {"id-1"}}}
	o.Apply(msg, "id-1", base)
	assert.Equal(t, "_schedule.reports.daily.id-1", msg.Subject)
	assert.Equal(t, "@daily", msg.Header.Get(transport.HeaderSchedule))
	assert.Equal(t, "reports.daily", msg.Header.Get(transport.HeaderScheduleTarget))
	assert.Equal(t, "Europe/Paris", msg.Header.Get(transport.HeaderScheduleTimeZone))
	assert.Equal(t, "3600s", msg.Header.Get(transport.HeaderScheduleTTL))
	assert.Empty(t, msg.Header.Get(transport.HeaderTTL), "the TTL is the stored events', not the schedule's")
	assert.Equal(t, "id-1 @daily Europe/Paris", msg.Header.Get(nats.MsgIdHdr))
	assert.Equal(t, "id-1", msg.Header.Get("ce-id"))

	o, err = transport.ResolvePublishOptions([]transport.PublishOption{transport.TTL(2 * time.Second), transport.ExpectLastSequence("orders.o1.>", 7)})
	require.NoError(t, err)
	msg = &nats.Msg{Subject: "orders.o1.paid", Header: nats.Header{"Nats-Msg-Id": {"id-2"}}}
	o.Apply(msg, "id-2", base)
	assert.Equal(t, "orders.o1.paid", msg.Subject)
	assert.Equal(t, "2s", msg.Header.Get(transport.HeaderTTL))
	assert.Equal(t, "7", msg.Header.Get(transport.HeaderExpectedLastSubjectSeq))
	assert.Equal(t, "orders.o1.>", msg.Header.Get(transport.HeaderExpectedLastSubjectSeqSubject))
	assert.Equal(t, "id-2", msg.Header.Get(nats.MsgIdHdr))
}

func TestScheduleSubjects_cover_each_stream_subject(t *testing.T) {
	tests := []struct {
		subjects, want []string
	}{
		{[]string{"auth.>"}, []string{"_schedule.auth.>"}},
		{[]string{"billing.*.created", "billing.invoice"}, []string{"_schedule.billing.*.created.*", "_schedule.billing.invoice.*"}},
		{[]string{">"}, nil},
		{[]string{"auth.>", "_schedule.auth.>"}, nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, transport.ScheduleSubjects(tt.subjects), "%v", tt.subjects)
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"2s": 2 * time.Second, "90": 90 * time.Second, "1h": time.Hour, "never": -1, "1.5s": time.Second} {
		got, err := transport.ParseTTL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "0", "500ms", "-3", "soon"} {
		_, err := transport.ParseTTL(in)
		assert.ErrorIs(t, err, transport.ErrInvalidOption, in)
	}
}

func TestConflictError_matches_ErrConflict(t *testing.T) {
	err := error(&transport.ConflictError{Subject: "orders.o1.>", Expected: 3, Current: 5, CurrentKnown: true})
	assert.ErrorIs(t, err, transport.ErrConflict)
	assert.Contains(t, err.Error(), "expected last sequence 3, current 5")
	assert.Contains(t, (&transport.ConflictError{Subject: "x", Expected: 1}).Error(), "current unknown")
}
