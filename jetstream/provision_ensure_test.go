package jetstream_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

// levelLog records every line of a watermill.LoggerAdapter that also has
// the Warn level the library uses when an adapter offers it.
type levelLog struct {
	mu    sync.Mutex
	lines []levelLine
}

type levelLine struct {
	level, msg string
	fields     watermill.LogFields
}

func (l *levelLog) add(level, msg string, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, levelLine{level, msg, fields})
}

func (l *levelLog) Error(msg string, err error, f watermill.LogFields) { l.add("error", msg, f) }
func (l *levelLog) Warn(msg string, err error, f watermill.LogFields)  { l.add("warn", msg, f) }
func (l *levelLog) Info(msg string, f watermill.LogFields)             { l.add("info", msg, f) }
func (l *levelLog) Debug(msg string, f watermill.LogFields)            { l.add("debug", msg, f) }
func (l *levelLog) Trace(msg string, f watermill.LogFields)            { l.add("trace", msg, f) }
func (l *levelLog) With(watermill.LogFields) watermill.LoggerAdapter   { return l }

// at returns the lines logged at level, as "msg fields".
func (l *levelLog) at(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.level == level {
			out = append(out, fmt.Sprintf("%s %v", ln.msg, ln.fields))
		}
	}
	return out
}

// TestEnsure_never_changes_an_existing_stream_and_warns_where_it_differs:
// the case. The operator applied AUTH_EVENTS with a 30-day max_age
// (scripts/streams.yaml); a service ensuring a bare spec of it must not turn
// that into unlimited: the stream is kept, the difference is logged at warn,
// and the returned Change says Differs. What is missing is created.
func TestEnsure_never_changes_an_existing_stream_and_warns_where_it_differs(t *testing.T) {
	srv := eventstest.NewServer(t)
	specs, err := jetstream.LoadSpecs("../scripts/streams.yaml")
	require.NoError(t, err)
	_, err = jetstream.ApplyWithLogger(pubCtx(t), srv.JS, watermill.NopLogger{}, specs.Streams[0]) // AUTH_EVENTS only
	require.NoError(t, err)

	log := &levelLog{}
	service := jetstream.StreamSpec{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}}
	consumer := jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "svc", FilterSubjects: []string{"auth.user.>"}, AckWait: time.Minute}
	got, err := jetstream.Ensure(pubCtx(t), srv.JS, log, service, jetstream.DeadLetterStream(), consumer)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, jetstream.Differs, got[0].Action, got[0].String())
	assert.Contains(t, got[0].Fields, jetstream.FieldChange{Field: "max_age", From: "720h0m0s", To: "0s"})
	assert.Equal(t, jetstream.Created, got[1].Action, "DLQ was missing")
	assert.Equal(t, jetstream.Created, got[2].Action, "the consumer was missing")

	st, err := srv.JS.Stream(pubCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, 30*24*time.Hour, st.CachedInfo().Config.MaxAge, "the operator's max_age is kept")
	assert.Equal(t, "Events of the auth service (auth.>)", st.CachedInfo().Config.Description)

	warns := log.at("warn")
	require.Len(t, warns, 3, "%q", warns)
	assert.Contains(t, warns[0], "AUTH_EVENTS")
	assert.Contains(t, warns[0], "max_age")
	assert.Contains(t, warns[0], "720h0m0s")
	assert.Contains(t, warns[0], "jetevents streams apply", "says where changes belong")
	assert.Contains(t, warns[1], "DLQ")
	assert.Contains(t, warns[2], "AUTH_EVENTS/svc")

	// An existing consumer is kept as well.
	consumer.AckWait = 5 * time.Second
	again, err := jetstream.Ensure(pubCtx(t), srv.JS, log, jetstream.DeadLetterStream(), consumer)
	require.NoError(t, err)
	assert.Equal(t, jetstream.Unchanged, again[0].Action)
	assert.Equal(t, jetstream.Differs, again[1].Action)
	assert.Equal(t, []jetstream.FieldChange{{Field: "ack_wait", From: "1m0s", To: "5s"}}, again[1].Fields)
	c, err := srv.JS.Consumer(pubCtx(t), "AUTH_EVENTS", "svc")
	require.NoError(t, err)
	assert.Equal(t, time.Minute, c.CachedInfo().Config.AckWait)
	assert.Len(t, log.at("warn"), 4, "one more warn line, for the consumer; none for what matches")

	// Invalid specs are refused before anything is sent, as by Apply.
	_, err = jetstream.Ensure(pubCtx(t), srv.JS, log, jetstream.StreamSpec{Name: "BAD.NAME", Subjects: []string{"bad.>"}})
	assert.ErrorIs(t, err, jetstream.ErrInvalidSpec)
}

// TestApply_logs_every_change_at_warn: what Apply creates or updates is
// logged at warn, with the fields it changed; an unchanged spec logs nothing.
func TestApply_logs_every_change_at_warn(t *testing.T) {
	srv := eventstest.NewServer(t)
	log := &levelLog{}
	stream := jetstream.AuthEventsStream()
	_, err := jetstream.ApplyWithLogger(pubCtx(t), srv.JS, log, stream, pubConsumerSpec())
	require.NoError(t, err)
	stream.MaxAge = 7 * 24 * time.Hour
	_, err = jetstream.ApplyWithLogger(pubCtx(t), srv.JS, log, stream, pubConsumerSpec())
	require.NoError(t, err)

	warns := log.at("warn")
	require.Len(t, warns, 3, "%q", warns)
	assert.Contains(t, warns[0], "created")
	assert.Contains(t, warns[0], "AUTH_EVENTS")
	assert.Contains(t, warns[1], "AUTH_EVENTS/auth-user-processor")
	assert.Contains(t, warns[2], "updated")
	assert.Contains(t, warns[2], "max_age: 720h0m0s -> 168h0m0s")
}
