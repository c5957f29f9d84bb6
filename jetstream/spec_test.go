package jetstream_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/jetstream"
)

func TestStreamSpec_Validate(t *testing.T) {
	valid := jetstream.AuthEventsStream
	tests := []struct {
		name   string
		modify func(*jetstream.StreamSpec)
		rule   error // nil: valid
	}{
		{"AUTH_EVENTS", func(*jetstream.StreamSpec) {}, nil},
		{"zero optional fields", func(s *jetstream.StreamSpec) { *s = jetstream.StreamSpec{Name: "S", Subjects: []string{"a.b"}} }, nil},
		{"memory, interest, 3 replicas", func(s *jetstream.StreamSpec) {
			s.Storage, s.Retention, s.Replicas = natsjs.MemoryStorage, natsjs.InterestPolicy, 3
		}, nil},
		{"duplicates equal to max age", func(s *jetstream.StreamSpec) { s.MaxAge, s.Duplicates = time.Minute, time.Minute }, nil},
		{"duplicates without max age", func(s *jetstream.StreamSpec) { s.MaxAge, s.Duplicates = 0, time.Hour }, nil},
		{"wildcards", func(s *jetstream.StreamSpec) { s.Subjects = []string{"a.*.c", "b.>", "*"} }, nil},
		{"empty name", func(s *jetstream.StreamSpec) { s.Name = "" }, jetstream.ErrInvalidName},
		{"name with dot", func(s *jetstream.StreamSpec) { s.Name = "AUTH.EVENTS" }, jetstream.ErrInvalidName},
		{"name with star", func(s *jetstream.StreamSpec) { s.Name = "AUTH*" }, jetstream.ErrInvalidName},
		{"name with gt", func(s *jetstream.StreamSpec) { s.Name = "AUTH>" }, jetstream.ErrInvalidName},
		{"name with space", func(s *jetstream.StreamSpec) { s.Name = "AUTH EVENTS" }, jetstream.ErrInvalidName},
		{"name with tab", func(s *jetstream.StreamSpec) { s.Name = "AUTH\tEVENTS" }, jetstream.ErrInvalidName},
		{"name with slash", func(s *jetstream.StreamSpec) { s.Name = "AUTH/EVENTS" }, jetstream.ErrInvalidName},
		{"duplicates longer than max age", func(s *jetstream.StreamSpec) { s.MaxAge, s.Duplicates = time.Minute, 2*time.Minute }, jetstream.ErrDuplicatesWindow},
		{"no subjects", func(s *jetstream.StreamSpec) { s.Subjects = nil }, jetstream.ErrInvalidSpec},
		{"empty token", func(s *jetstream.StreamSpec) { s.Subjects = []string{"auth..x"} }, jetstream.ErrInvalidSpec},
		{"gt not last", func(s *jetstream.StreamSpec) { s.Subjects = []string{"auth.>.x"} }, jetstream.ErrInvalidSpec},
		{"partial wildcard", func(s *jetstream.StreamSpec) { s.Subjects = []string{"auth.us*"} }, jetstream.ErrInvalidSpec},
		{"subject with space", func(s *jetstream.StreamSpec) { s.Subjects = []string{"auth. x"} }, jetstream.ErrInvalidSpec},
		{"subject twice", func(s *jetstream.StreamSpec) { s.Subjects = []string{"a.b", "a.b"} }, jetstream.ErrInvalidSpec},
		{"unknown storage", func(s *jetstream.StreamSpec) { s.Storage = 7 }, jetstream.ErrInvalidSpec},
		{"unknown retention", func(s *jetstream.StreamSpec) { s.Retention = 7 }, jetstream.ErrInvalidSpec},
		{"6 replicas", func(s *jetstream.StreamSpec) { s.Replicas = 6 }, jetstream.ErrInvalidSpec},
		{"negative max age", func(s *jetstream.StreamSpec) { s.MaxAge = -time.Second }, jetstream.ErrInvalidSpec},
		{"negative max bytes", func(s *jetstream.StreamSpec) { s.MaxBytes = -2 }, jetstream.ErrInvalidSpec},
		{"negative max msg size", func(s *jetstream.StreamSpec) { s.MaxMsgSize = -2 }, jetstream.ErrInvalidSpec},
		{"negative duplicates", func(s *jetstream.StreamSpec) { s.Duplicates = -time.Second }, jetstream.ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.modify(&s)
			err := s.Validate()
			if tt.rule == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.rule)
			assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
			assert.ErrorIs(t, err, jetstream.ErrInvalidConfig)
		})
	}
	assert.NoError(t, jetstream.DeadLetterStream().Validate())
}

func TestConsumerSpec_Validate(t *testing.T) {
	valid := func() jetstream.ConsumerSpec {
		return jetstream.ConsumerSpec{
			Stream: "AUTH_EVENTS", Durable: "auth-user-processor", FilterSubjects: []string{"auth.user.*"},
			MaxDeliver: 5, BackOff: []time.Duration{time.Second, 5 * time.Second}, MaxAckPending: 1000,
		}
	}
	tests := []struct {
		name   string
		modify func(*jetstream.ConsumerSpec)
		rule   error
	}{
		{"valid", func(*jetstream.ConsumerSpec) {}, nil},
		{"backoff as long as max deliver", func(c *jetstream.ConsumerSpec) {
			c.MaxDeliver, c.BackOff = 2, []time.Duration{time.Second, 2 * time.Second}
		}, nil},
		{"backoff with unlimited deliveries", func(c *jetstream.ConsumerSpec) {
			c.MaxDeliver, c.BackOff = 0, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
		}, nil},
		{"ack wait equal to backoff[0]", func(c *jetstream.ConsumerSpec) { c.AckWait = time.Second }, nil},
		{"no filter, deliver new", func(c *jetstream.ConsumerSpec) {
			c.FilterSubjects, c.DeliverPolicy = nil, natsjs.DeliverNewPolicy
		}, nil},
		{"backoff longer than max deliver", func(c *jetstream.ConsumerSpec) {
			c.MaxDeliver, c.BackOff = 2, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
		}, jetstream.ErrBackOffTooLong},
		{"durable with dot", func(c *jetstream.ConsumerSpec) { c.Durable = "auth.user" }, jetstream.ErrInvalidName},
		{"durable with star", func(c *jetstream.ConsumerSpec) { c.Durable = "auth*" }, jetstream.ErrInvalidName},
		{"durable with gt", func(c *jetstream.ConsumerSpec) { c.Durable = "auth>" }, jetstream.ErrInvalidName},
		{"durable with space", func(c *jetstream.ConsumerSpec) { c.Durable = "auth user" }, jetstream.ErrInvalidName},
		{"no durable", func(c *jetstream.ConsumerSpec) { c.Durable = "" }, jetstream.ErrInvalidName},
		{"stream with dot", func(c *jetstream.ConsumerSpec) { c.Stream = "AUTH.EVENTS" }, jetstream.ErrInvalidName},
		{"ack wait overridden by backoff", func(c *jetstream.ConsumerSpec) { c.AckWait = 30 * time.Second }, jetstream.ErrInvalidSpec},
		{"zero backoff entry", func(c *jetstream.ConsumerSpec) { c.BackOff = []time.Duration{0} }, jetstream.ErrInvalidSpec},
		{"bad filter", func(c *jetstream.ConsumerSpec) { c.FilterSubjects = []string{"auth.>.x"} }, jetstream.ErrInvalidSpec},
		{"filter twice", func(c *jetstream.ConsumerSpec) { c.FilterSubjects = []string{"a.b", "a.b"} }, jetstream.ErrInvalidSpec},
		{"deliver by start sequence", func(c *jetstream.ConsumerSpec) { c.DeliverPolicy = natsjs.DeliverByStartSequencePolicy }, jetstream.ErrInvalidSpec},
		{"negative ack wait", func(c *jetstream.ConsumerSpec) { c.BackOff, c.AckWait = nil, -time.Second }, jetstream.ErrInvalidSpec},
		{"max deliver below -1", func(c *jetstream.ConsumerSpec) { c.MaxDeliver = -2 }, jetstream.ErrInvalidSpec},
		{"max ack pending below -1", func(c *jetstream.ConsumerSpec) { c.MaxAckPending = -2 }, jetstream.ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			if tt.rule == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.rule)
			assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
			assert.ErrorIs(t, err, jetstream.ErrInvalidConfig)
		})
	}
}

func TestLoadSpecs_yaml_and_json(t *testing.T) {
	want := jetstream.Specs{
		Streams: []jetstream.StreamSpec{{
			Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: natsjs.MemoryStorage,
			Retention: natsjs.WorkQueuePolicy, Replicas: 1, MaxAge: time.Hour, MaxBytes: 1 << 20,
			MaxMsgSize: 4096, Duplicates: 30 * time.Second,
		}},
		Consumers: []jetstream.ConsumerSpec{{
			Stream: "ORDERS", Durable: "billing", FilterSubjects: []string{"orders.*.created"},
			DeliverPolicy: natsjs.DeliverLastPerSubjectPolicy, MaxDeliver: 3,
			BackOff: []time.Duration{time.Second, 10 * time.Second}, MaxAckPending: 50,
		}},
	}
	files := map[string]string{
		"specs.yaml": `
streams:
  - name: ORDERS
    subjects: ["orders.>"]
    storage: memory
    retention: workqueue
    replicas: 1
    max_age: 1h
    max_bytes: 1048576
    max_msg_size: 4096
    duplicates: 30s
consumers:
  - stream: ORDERS
    durable: billing
    filter_subjects: [orders.*.created]
    deliver_policy: last_per_subject
    max_deliver: 3
    backoff: [1s, 10s]
    max_ack_pending: 50
`,
		"specs.json": `{
  "streams": [{"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory", "retention": "workqueue",
    "replicas": 1, "max_age": "1h", "max_bytes": 1048576, "max_msg_size": 4096, "duplicates": "30s"}],
  "consumers": [{"stream": "ORDERS", "durable": "billing", "filter_subjects": ["orders.*.created"],
    "deliver_policy": "last_per_subject", "max_deliver": 3, "backoff": ["1s", "10s"], "max_ack_pending": 50}]
}`,
	}
	dir := t.TempDir()
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			got, err := jetstream.LoadSpecs(pubWriteFile(t, dir, name, []byte(content)))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestLoadSpecs_refuses_bad_files(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{
		"empty":                  ``,
		"nothing declared":       `streams: []`,
		"unknown key":            "streams:\n  - name: S\n    subjects: [a]\n    max_agee: 1h\n",
		"duration as a number":   "streams:\n  - name: S\n    subjects: [a]\n    max_age: 3600\n",
		"bad duration":           "streams:\n  - name: S\n    subjects: [a]\n    max_age: an hour\n",
		"unknown storage":        "streams:\n  - name: S\n    subjects: [a]\n    storage: disk\n",
		"unknown deliver policy": "consumers:\n  - stream: S\n    durable: d\n    deliver_policy: first\n",
		"invalid spec":           "streams:\n  - name: A.B\n    subjects: [a]\n",
		"stream twice":           "streams:\n  - name: S\n    subjects: [a]\n  - name: S\n    subjects: [b]\n",
		"backoff too long":       "consumers:\n  - stream: S\n    durable: d\n    max_deliver: 1\n    backoff: [1s, 2s]\n",
		"not yaml":               "streams: [",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := jetstream.LoadSpecs(pubWriteFile(t, dir, "f.yaml", []byte(content)))
			assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
			assert.ErrorIs(t, err, jetstream.ErrInvalidConfig)
		})
	}
	_, err := jetstream.LoadSpecs(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadSpecs_shipped_example(t *testing.T) {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	specs, err := jetstream.LoadSpecs(filepath.Join(filepath.Dir(file), "..", "scripts", "streams.yaml"))
	require.NoError(t, err)

	require.Len(t, specs.Streams, 2)
	assert.Equal(t, jetstream.AuthEventsStream(), specs.Streams[0], "the file declares AuthEventsStream()")
	assert.Equal(t, jetstream.DeadLetterStream(), specs.Streams[1], "the file declares DeadLetterStream()")
	require.Len(t, specs.Consumers, 1)
	assert.Equal(t, "AUTH_EVENTS", specs.Consumers[0].Stream)
	assert.Equal(t, "user-notifications", specs.Consumers[0].Durable, "the seed subscriber's durable")
	assert.Equal(t, []string{"auth.user.>"}, specs.Consumers[0].FilterSubjects)
}
