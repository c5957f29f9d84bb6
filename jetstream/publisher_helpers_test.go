package jetstream_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
)

// pubWait bounds every wait of the publisher tests.
const pubWait = 10 * time.Second

var pubTime = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)

// pubEvent is a valid event of type typ.
func pubEvent(t testing.TB, typ string) *envelope.Event {
	t.Helper()
	return envelope.NewEvent(typ, "auth-service", "org-123", pubTime, map[string]interface{}{"user_id": 12345})
}

// pubStream creates a stream on subjects (file storage, defaults otherwise).
func pubStream(t testing.TB, js natsjs.JetStream, name string, subjects ...string) {
	t.Helper()
	pubStreamConfig(t, js, natsjs.StreamConfig{Name: name, Subjects: subjects})
}

func pubStreamConfig(t testing.TB, js natsjs.JetStream, cfg natsjs.StreamConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubWait)
	defer cancel()
	_, err := js.CreateStream(ctx, cfg)
	require.NoError(t, err)
}

// pubCount is the number of messages stored in stream.
func pubCount(t testing.TB, js natsjs.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubWait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.Msgs
}

// pubStored returns the messages stored in stream, in order.
func pubStored(t testing.TB, js natsjs.JetStream, stream string) []*natsjs.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubWait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*natsjs.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// pubNew is NewPublisher, closed when the test ends.
func pubNew(t testing.TB, nc *nats.Conn, cfg ...jetstream.PublisherConfig) *jetstream.Publisher {
	t.Helper()
	p, err := jetstream.NewPublisher(nc, cfg...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// pubCtx is a context bounded by pubWait.
func pubCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubWait)
	t.Cleanup(cancel)
	return ctx
}

// pubReports collects the AsyncErrors handed to a publisher's handler.
type pubReports struct {
	mu   sync.Mutex
	errs []jetstream.AsyncError
}

func (r *pubReports) handle(ae jetstream.AsyncError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, ae)
}

func (r *pubReports) all() []jetstream.AsyncError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]jetstream.AsyncError(nil), r.errs...)
}

// pubBlackHole subscribes to subject on nc without ever replying: a publish
// there gets neither an ack nor "no responders", only a timeout.
func pubBlackHole(t testing.TB, nc *nats.Conn, subject string) {
	t.Helper()
	sub, err := nc.Subscribe(subject, func(*nats.Msg) {})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

// pubLogger is a watermill.LoggerAdapter that records entries.
type pubLogger struct {
	mu      sync.Mutex
	entries []pubLogEntry
}

type pubLogEntry struct {
	level, msg string
	err        error
	fields     watermill.LogFields
}

func (l *pubLogger) log(level, msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, pubLogEntry{level: level, msg: msg, err: err, fields: fields})
}

func (l *pubLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.log("error", msg, err, fields)
}
func (l *pubLogger) Info(msg string, fields watermill.LogFields)      { l.log("info", msg, nil, fields) }
func (l *pubLogger) Debug(msg string, fields watermill.LogFields)     { l.log("debug", msg, nil, fields) }
func (l *pubLogger) Trace(msg string, fields watermill.LogFields)     { l.log("trace", msg, nil, fields) }
func (l *pubLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// find returns the entries whose message is msg.
func (l *pubLogger) find(msg string) []pubLogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pubLogEntry
	for _, e := range l.entries {
		if e.msg == msg {
			out = append(out, e)
		}
	}
	return out
}
