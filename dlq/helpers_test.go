package dlq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is an embedded server with AUTH_EVENTS (auth.>) and DLQ (dlq.>).
type env struct {
	srv *eventstest.Server // nil for newEnvOn
	js  natsjs.JetStream
	dl  *middleware.DeadLetterer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := eventstest.NewServer(t)
	e := newEnvOn(t, srv.Conn)
	e.srv = srv
	return e
}

// newEnvOn is newEnv on a connection to a server of the test's own.
func newEnvOn(t *testing.T, nc *nats.Conn) *env {
	t.Helper()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	_, err = jetstream.Ensure(testCtx(t), js, watermill.NopLogger{}, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	tr, err := jetstream.NewTransport(nc, jetstream.TransportConfig{DeadLetterStream: "DLQ"})
	require.NoError(t, err)
	dl, err := middleware.NewDeadLetterer(tr, middleware.DeadLetterConfig{Stream: "DLQ"})
	require.NoError(t, err)
	return &env{js: js, dl: dl}
}

// deadLetter publishes an event of type typ for org on subject through the
// library's marshaler and dead-letters it as the router does, with reason
// and cause; it returns the event.
func (e *env) deadLetter(t *testing.T, subject, typ, org, reason string, cause error) *envelope.Event {
	t.Helper()
	ev := envelope.NewEvent(typ, "test", org, time.Now(), map[string]any{"n": 1})
	msg, err := marshaler.Default().EventToNATS(subject, ev, marshaler.Relations{})
	require.NoError(t, err)
	ack, err := e.js.PublishMsg(testCtx(t), msg)
	require.NoError(t, err)
	st, err := e.js.Stream(testCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	raw, err := st.GetMsg(testCtx(t), ack.Sequence)
	require.NoError(t, err)
	require.NoError(t, e.dl.Send(testCtx(t), middleware.Record{
		Subject: raw.Subject, Header: raw.Header, Data: raw.Data,
		Stream: "AUTH_EVENTS", Consumer: "user-notifications", StreamSeq: ack.Sequence, Deliveries: 5,
		Handler: "user-notifications", Reason: reason, Err: cause,
	}))
	return ev
}

func msgs(t *testing.T, srv *eventstest.Server, stream string) uint64 {
	t.Helper()
	st, err := srv.JS.Stream(testCtx(t), stream)
	require.NoError(t, err)
	return st.CachedInfo().State.Msgs
}

var errDBDown = errors.New("db down")
