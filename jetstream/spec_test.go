package jetstream_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
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
		{"empty name", func(s *jetstream.StreamSpec) { s.Name = "" }, transport.ErrInvalidName},
		{"name with dot", func(s *jetstream.StreamSpec) { s.Name = "AUTH.EVENTS" }, transport.ErrInvalidName},
		{"name with star", func(s *jetstream.StreamSpec) { s.Name = "AUTH*" }, transport.ErrInvalidName},
		{"name with gt", func(s *jetstream.StreamSpec) { s.Name = "AUTH>" }, transport.ErrInvalidName},
		{"name with space", func(s *jetstream.StreamSpec) { s.Name = "AUTH EVENTS" }, transport.ErrInvalidName},
		{"name with tab", func(s *jetstream.StreamSpec) { s.Name = "AUTH\tEVENTS" }, transport.ErrInvalidName},
		{"name with slash", func(s *jetstream.StreamSpec) { s.Name = "AUTH/EVENTS" }, transport.ErrInvalidName},
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

		{"last value per subject, discard new, TTLs, s2", func(s *jetstream.StreamSpec) {
			s.MaxMsgsPerSubject, s.Discard, s.DiscardNewPerSubject = 1, natsjs.DiscardNew, true
			s.AllowMsgTTL, s.Compression = true, natsjs.S2Compression
		}, nil},
		{"mirror without subjects", func(s *jetstream.StreamSpec) {
			s.Subjects, s.Mirror = nil, &jetstream.StreamSourceSpec{Name: "ORIGIN", Domain: "hub"}
		}, nil},
		{"sources without subjects", func(s *jetstream.StreamSpec) {
			s.Subjects = nil
			s.Sources = []jetstream.StreamSourceSpec{{Name: "A", FilterSubject: "a.>"}, {Name: "A", FilterSubject: "b.>"}, {Name: "B", StartSequence: 9}}
		}, nil},
		{"placement", func(s *jetstream.StreamSpec) {
			s.Placement = &jetstream.PlacementSpec{Cluster: "east", Tags: []string{"ssd"}}
		}, nil},
		{"mirror with subjects", func(s *jetstream.StreamSpec) { s.Mirror = &jetstream.StreamSourceSpec{Name: "ORIGIN"} }, jetstream.ErrInvalidSpec},
		{"mirror with sources", func(s *jetstream.StreamSpec) {
			s.Subjects, s.Mirror, s.Sources = nil, &jetstream.StreamSourceSpec{Name: "A"}, []jetstream.StreamSourceSpec{{Name: "B"}}
		}, jetstream.ErrInvalidSpec},
		{"mirror of itself", func(s *jetstream.StreamSpec) {
			s.Subjects, s.Mirror = nil, &jetstream.StreamSourceSpec{Name: s.Name}
		}, jetstream.ErrInvalidSpec},
		{"mirror with a bad name", func(s *jetstream.StreamSpec) {
			s.Subjects, s.Mirror = nil, &jetstream.StreamSourceSpec{Name: "A.B"}
		}, transport.ErrInvalidName},
		{"source listed twice", func(s *jetstream.StreamSpec) { s.Sources = []jetstream.StreamSourceSpec{{Name: "A"}, {Name: "A"}} }, jetstream.ErrInvalidSpec},
		{"source with start sequence and time", func(s *jetstream.StreamSpec) {
			s.Sources = []jetstream.StreamSourceSpec{{Name: "A", StartSequence: 1, StartTime: time.Unix(1, 0)}}
		}, jetstream.ErrInvalidSpec},
		{"source with bad filter", func(s *jetstream.StreamSpec) {
			s.Sources = []jetstream.StreamSourceSpec{{Name: "A", FilterSubject: "a..b"}}
		}, jetstream.ErrInvalidSpec},
		{"discard new per subject without discard new", func(s *jetstream.StreamSpec) {
			s.MaxMsgsPerSubject, s.DiscardNewPerSubject = 1, true
		}, jetstream.ErrInvalidSpec},
		{"discard new per subject without a per-subject limit", func(s *jetstream.StreamSpec) {
			s.Discard, s.DiscardNewPerSubject = natsjs.DiscardNew, true
		}, jetstream.ErrInvalidSpec},
		{"unknown discard", func(s *jetstream.StreamSpec) { s.Discard = 7 }, jetstream.ErrInvalidSpec},
		{"unknown compression", func(s *jetstream.StreamSpec) { s.Compression = 7 }, jetstream.ErrInvalidSpec},
		{"negative max msgs per subject", func(s *jetstream.StreamSpec) { s.MaxMsgsPerSubject = -2 }, jetstream.ErrInvalidSpec},
		{"empty placement", func(s *jetstream.StreamSpec) { s.Placement = &jetstream.PlacementSpec{} }, jetstream.ErrInvalidSpec},
		{"empty placement tag", func(s *jetstream.StreamSpec) { s.Placement = &jetstream.PlacementSpec{Tags: []string{" "}} }, jetstream.ErrInvalidSpec},
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
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
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
		{"durable with dot", func(c *jetstream.ConsumerSpec) { c.Durable = "auth.user" }, transport.ErrInvalidName},
		{"durable with star", func(c *jetstream.ConsumerSpec) { c.Durable = "auth*" }, transport.ErrInvalidName},
		{"durable with gt", func(c *jetstream.ConsumerSpec) { c.Durable = "auth>" }, transport.ErrInvalidName},
		{"durable with space", func(c *jetstream.ConsumerSpec) { c.Durable = "auth user" }, transport.ErrInvalidName},
		{"no durable", func(c *jetstream.ConsumerSpec) { c.Durable = "" }, transport.ErrInvalidName},
		{"stream with dot", func(c *jetstream.ConsumerSpec) { c.Stream = "AUTH.EVENTS" }, transport.ErrInvalidName},
		{"ack wait overridden by backoff", func(c *jetstream.ConsumerSpec) { c.AckWait = 30 * time.Second }, jetstream.ErrInvalidSpec},
		{"zero backoff entry", func(c *jetstream.ConsumerSpec) { c.BackOff = []time.Duration{0} }, jetstream.ErrInvalidSpec},
		{"bad filter", func(c *jetstream.ConsumerSpec) { c.FilterSubjects = []string{"auth.>.x"} }, jetstream.ErrInvalidSpec},
		{"filter twice", func(c *jetstream.ConsumerSpec) { c.FilterSubjects = []string{"a.b", "a.b"} }, jetstream.ErrInvalidSpec},
		{"deliver by start sequence without one", func(c *jetstream.ConsumerSpec) { c.DeliverPolicy = natsjs.DeliverByStartSequencePolicy }, jetstream.ErrInvalidSpec},
		{"deliver by start time without one", func(c *jetstream.ConsumerSpec) { c.DeliverPolicy = natsjs.DeliverByStartTimePolicy }, jetstream.ErrInvalidSpec},
		{"start sequence alone", func(c *jetstream.ConsumerSpec) { c.StartSequence = 100 }, nil},
		{"start sequence with its policy", func(c *jetstream.ConsumerSpec) {
			c.DeliverPolicy, c.StartSequence = natsjs.DeliverByStartSequencePolicy, 100
		}, nil},
		{"start time alone", func(c *jetstream.ConsumerSpec) { c.StartTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }, nil},
		{"start sequence and start time", func(c *jetstream.ConsumerSpec) {
			c.StartSequence, c.StartTime = 1, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		}, jetstream.ErrInvalidSpec},
		{"start sequence with deliver new", func(c *jetstream.ConsumerSpec) {
			c.DeliverPolicy, c.StartSequence = natsjs.DeliverNewPolicy, 1
		}, jetstream.ErrInvalidSpec},
		{"start time with deliver by start sequence", func(c *jetstream.ConsumerSpec) {
			c.DeliverPolicy, c.StartTime = natsjs.DeliverByStartSequencePolicy, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		}, jetstream.ErrInvalidSpec},
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
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		})
	}
}

func TestLoadSpecs_yaml_and_json(t *testing.T) {
	want := jetstream.Specs{
		Streams: []jetstream.StreamSpec{{
			Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: natsjs.MemoryStorage,
			Retention: natsjs.WorkQueuePolicy, Replicas: 1, MaxAge: 30 * 24 * time.Hour, MaxBytes: 1 << 20,
			MaxMsgSize: 4096, Duplicates: 30 * time.Second,
			MaxMsgsPerSubject: 10, Discard: natsjs.DiscardNew, DiscardNewPerSubject: true,
			AllowMsgTTL: true, Compression: natsjs.S2Compression,
			Sources: []jetstream.StreamSourceSpec{
				{Name: "LEGACY", FilterSubject: "legacy.orders.>", StartTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
				{Name: "EDGE", StartSequence: 7, Domain: "leaf"},
			},
			Placement: &jetstream.PlacementSpec{Cluster: "east", Tags: []string{"ssd", "az:1"}},
		}, {
			Name: "ORDERS_COPY", Mirror: &jetstream.StreamSourceSpec{Name: "ORDERS"},
		}},
		Consumers: []jetstream.ConsumerSpec{{
			Stream: "ORDERS", Durable: "billing", FilterSubjects: []string{"orders.*.created"},
			DeliverPolicy: natsjs.DeliverLastPerSubjectPolicy, MaxDeliver: 3,
			BackOff: []time.Duration{time.Second, 10 * time.Second}, MaxAckPending: 50,
		}, {
			Stream: "ORDERS", Durable: "projection", DeliverPolicy: natsjs.DeliverByStartTimePolicy,
			StartTime: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), AckWait: 36 * time.Hour,
		}, {
			Stream: "ORDERS", Durable: "replayer", StartSequence: 1000,
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
    max_age: 30d
    max_bytes: 1048576
    max_msg_size: 4096
    duplicates: 30s
    max_msgs_per_subject: 10
    discard: new
    discard_new_per_subject: true
    allow_msg_ttl: true
    compression: s2
    sources:
      - name: LEGACY
        filter_subject: legacy.orders.>
        start_time: 2024-01-01T00:00:00Z
      - {name: EDGE, start_sequence: 7, domain: leaf}
    placement:
      cluster: east
      tags: [ssd, "az:1"]
  - name: ORDERS_COPY
    mirror: {name: ORDERS}
consumers:
  - stream: ORDERS
    durable: billing
    filter_subjects: [orders.*.created]
    deliver_policy: last_per_subject
    max_deliver: 3
    backoff: [1s, 10s]
    max_ack_pending: 50
  - stream: ORDERS
    durable: projection
    deliver_policy: by_start_time
    start_time: "2024-06-01T12:00:00Z"
    ack_wait: 1d12h
  - stream: ORDERS
    durable: replayer
    start_sequence: 1000
`,
		"specs.json": `{
  "streams": [{"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory", "retention": "workqueue",
    "replicas": 1, "max_age": "720h", "max_bytes": 1048576, "max_msg_size": 4096, "duplicates": "30s",
    "max_msgs_per_subject": 10, "discard": "new", "discard_new_per_subject": true, "allow_msg_ttl": true,
    "compression": "s2",
    "sources": [{"name": "LEGACY", "filter_subject": "legacy.orders.>", "start_time": "2024-01-01T00:00:00Z"},
      {"name": "EDGE", "start_sequence": 7, "domain": "leaf"}],
    "placement": {"cluster": "east", "tags": ["ssd", "az:1"]}},
    {"name": "ORDERS_COPY", "mirror": {"name": "ORDERS"}}],
  "consumers": [{"stream": "ORDERS", "durable": "billing", "filter_subjects": ["orders.*.created"],
    "deliver_policy": "last_per_subject", "max_deliver": 3, "backoff": ["1s", "10s"], "max_ack_pending": 50},
    {"stream": "ORDERS", "durable": "projection", "deliver_policy": "by_start_time",
     "start_time": "2024-06-01T12:00:00Z", "ack_wait": "36h"},
    {"stream": "ORDERS", "durable": "replayer", "start_sequence": 1000}]
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

func TestParseDuration_accepts_go_durations_and_days(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"720h", 720 * time.Hour, true},
		{"30d", 720 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{" 7d ", 7 * 24 * time.Hour, true},
		{"500ms", 500 * time.Millisecond, true},
		{"30", 0, false},
		{"d", 0, false},
		{"3x", 0, false},
		{"1..5d", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := jetstream.ParseDuration(tt.in)
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestLoadSpecs_errors_say_where_and_what_in_the_files_terms: every error
// names the file, the line, the spec and the key, proposes the fix, and
// never names a Go type or repeats a prefix.
func TestLoadSpecs_errors_say_where_and_what_in_the_files_terms(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string
	}{
		{"typo in a key", "streams:\n  - name: S\n    subject: [a.>]\n",
			[]string{"line 3", "streams[0] S", `unknown key "subject"`, `did you mean "subjects"?`}},
		{"unknown key far from any", "streams:\n  - name: S\n    subjects: [a]\n    colour: red\n",
			[]string{"line 4", `unknown key "colour"`, "valid keys: name, description, subjects"}},
		{"unknown top-level key", "stream:\n  - name: S\n",
			[]string{"line 1", `unknown key "stream"`, `did you mean "streams"?`}},
		{"bad duration", "streams:\n  - name: S\n    subjects: [a]\n    max_age: 30x\n",
			[]string{"line 4", "streams[0] S max_age", `"30x" is not a duration`, "720h or 30d"}},
		{"bare number as a duration", "streams:\n  - name: S\n    subjects: [a]\n    max_age: 3600\n",
			[]string{"line 4", `"3600" is not a duration`}},
		{"text for a number", "streams:\n  - name: S\n    subjects: [a]\n    replicas: three\n",
			[]string{"line 4", "streams[0] S replicas", `want a whole number, got "three"`}},
		{"mapping for a list", "streams:\n  - name: S\n    subjects: {a: b}\n",
			[]string{"line 3", "streams[0] S subjects", "want a list, got a mapping"}},
		{"unknown storage", "streams:\n  - name: S\n    subjects: [a]\n    storage: disk\n",
			[]string{"line 4", `unknown storage "disk" (one of file, memory)`}},
		{"unknown deliver policy", "consumers:\n  - stream: S\n    durable: d\n    deliver_policy: first\n",
			[]string{"line 4", "consumers[0] S/d", `unknown deliver policy "first"`, "by_start_time"}},
		{"bad time", "consumers:\n  - stream: S\n    durable: d\n    start_time: yesterday\n",
			[]string{"line 4", `"yesterday" is not a time`, "2024-01-15T00:00:00Z"}},
		{"key twice", "streams:\n  - name: S\n    subjects: [a]\n    subjects: [b]\n",
			[]string{"line 4", `key "subjects" given twice`}},
		{"a list at the top", "- name: S\n",
			[]string{"line 1", "want streams: and consumers: at the top"}},
		{"invalid spec", "streams:\n  - name: A.B\n    subjects: [a]\n",
			[]string{`invalid stream spec "A.B"`, `name "A.B" contains '.'`}},
		{"not yaml", "streams: [", []string{"not valid YAML or JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := pubWriteFile(t, dir, "f.yaml", []byte(tt.content))
			_, err := jetstream.LoadSpecs(path)
			require.Error(t, err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, path+": "), msg)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			assert.NotContains(t, msg, "jetstream.")
			assert.NotContains(t, msg, "Doc")
			assert.NotContains(t, msg, "time.Duration")
			assert.NotContains(t, msg, "invalid jetstream configuration")
			assert.NotContains(t, msg, "\n")
			assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
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
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
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
