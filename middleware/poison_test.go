package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

const (
	testStream   = "AUTH_EVENTS"
	testConsumer = "users"
	testSubject  = "auth.user.created"
)

// dlqEnv is an embedded server with the events stream and, unless noDLQ,
// the dead-letter stream, and a DeadLetterer publishing through the
// JetStream transport.
type dlqEnv struct {
	srv   *eventstest.Server
	tr    *jetstream.Transport
	clock *eventstest.Clock
	dl    *middleware.DeadLetterer
}

func newDLQEnv(t *testing.T, noDLQ bool) *dlqEnv {
	t.Helper()
	srv := eventstest.NewServer(t)
	ctx := testCtx(t)
	_, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: testStream, Subjects: []string{"auth.>"}})
	require.NoError(t, err)
	if !noDLQ {
		createDLQ(t, srv)
	}
	clock := eventstest.NewClock(t0)
	tr := newTransport(t, srv.Conn, jetstream.TransportConfig{})
	dl, err := middleware.NewDeadLetterer(tr, middleware.DeadLetterConfig{
		Clock:        clock,
		RetryBackoff: transport.Backoff{Jitter: -1},
	})
	require.NoError(t, err)
	return &dlqEnv{srv: srv, tr: tr, clock: clock, dl: dl}
}

func newTransport(t *testing.T, nc *nats.Conn, cfg jetstream.TransportConfig) *jetstream.Transport {
	t.Helper()
	tr, err := jetstream.NewTransport(nc, cfg)
	require.NoError(t, err)
	return tr
}

func createDLQ(t *testing.T, srv *eventstest.Server) {
	t.Helper()
	_, err := srv.JS.CreateStream(testCtx(t), natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}})
	require.NoError(t, err)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// originalHeaders are the headers of the published original message.
func originalHeaders(eventID string) nats.Header {
	return nats.Header{
		nats.MsgIdHdr:               {eventID},
		marshaler.HeaderID:          {eventID},
		marshaler.HeaderType:        {"user.created"},
		marshaler.HeaderSpecVersion: {"1.0"},
		"X-Custom":                  {"a", "b"},
	}
}

// publishAndFetch stores an original message and returns it as delivered by
// a durable pull consumer (a real natsjs.Msg with metadata).
func (e *dlqEnv) publishAndFetch(t *testing.T, data []byte, h nats.Header) natsjs.Msg {
	t.Helper()
	ctx := testCtx(t)
	_, err := e.srv.JS.PublishMsg(ctx, &nats.Msg{Subject: testSubject, Header: h, Data: data})
	require.NoError(t, err)
	cons, err := e.srv.JS.CreateOrUpdateConsumer(ctx, testStream, natsjs.ConsumerConfig{Durable: testConsumer, AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(1, natsjs.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		return m
	}
	require.NoError(t, batch.Error())
	t.Fatal("no message fetched")
	return nil
}

// deliveredStored is raw as the router's pipeline hands it to the stack: a
// Watermill message whose context carries the delivery view with the message
// as stored (headers and payload), filled as a transport fills it.
func deliveredStored(t *testing.T, raw natsjs.Msg) *message.Message {
	t.Helper()
	md, err := raw.Metadata()
	require.NoError(t, err)
	dv := &transport.Delivery{
		Subject: raw.Subject(), Header: raw.Headers(), Data: raw.Data(),
		Stream: md.Stream, Consumer: md.Consumer,
		StreamSeq: md.Sequence.Stream, ConsumerSeq: md.Sequence.Consumer,
		Attempt: md.NumDelivered, Published: md.Timestamp, Received: time.Now(),
	}
	msg := message.NewMessage(raw.Headers().Get(marshaler.HeaderID), raw.Data())
	msg.SetContext(transport.NewContext(context.Background(), dv))
	return msg
}

// dlqMessages returns every message of the DLQ stream.
func (e *dlqEnv) dlqMessages(t *testing.T) []*natsjs.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	s, err := e.srv.JS.Stream(ctx, "DLQ")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*natsjs.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// waitDLQ waits until the DLQ stream holds at least n messages and returns
// them.
func (e *dlqEnv) waitDLQ(t *testing.T, n int) []*natsjs.RawStreamMsg {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.dlqMessages(t)) >= n }, 10*time.Second, 20*time.Millisecond)
	return e.dlqMessages(t)
}

func TestDeadLetterer_undecodable_message_lands_unchanged_with_every_header(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
	}{
		{"malformed payload", errors.Join(marshaler.ErrUnmarshal, envelope.ErrMalformed), middleware.ReasonUnmarshal},
		{"unknown schema major", errors.Join(marshaler.ErrUnmarshal, marshaler.ErrUnknownSchemaMajor), middleware.ReasonSchemaVersion},
		{"any other decode error", errors.New("weird"), middleware.ReasonUnmarshal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, false)
			data := []byte("{not json")
			raw := env.publishAndFetch(t, data, originalHeaders("ev-1"))

			require.NoError(t, env.dl.Undecodable(testCtx(t), transport.FromContext(deliveredStored(t, raw).Context()), tt.err))

			got := env.dlqMessages(t)
			require.Len(t, got, 1)
			dm := got[0]
			assert.Equal(t, "dlq."+testSubject, dm.Subject)
			assert.Equal(t, data, dm.Data, "payload unchanged")
			want := nats.Header{
				marshaler.HeaderID:          {"ev-1"},
				marshaler.HeaderType:        {"user.created"},
				marshaler.HeaderSpecVersion: {"1.0"},
				"X-Custom":                  {"a", "b"},
				"Dlq-Original-Nats-Msg-Id":  {"ev-1"},
				nats.MsgIdHdr:               {"dlq:AUTH_EVENTS:users:1"},
				middleware.HeaderSubject:    {testSubject},
				middleware.HeaderStream:     {testStream},
				middleware.HeaderConsumer:   {testConsumer},
				middleware.HeaderStreamSeq:  {"1"},
				middleware.HeaderDeliveries: {"1"},
				middleware.HeaderHandler:    {testConsumer},
				middleware.HeaderReason:     {tt.wantReason},
				middleware.HeaderError:      {strings.ReplaceAll(tt.err.Error(), "\n", " ")},
				middleware.HeaderTime:       {"2025-01-02T03:04:05Z"},
			}
			assert.Equal(t, want, dm.Header)
		})
	}
}

// TestDeadLetterer_on_a_publisher_writes_every_header runs the middleware on
// a delivery that carries the message as stored (the router's pipeline): the
// dead letter is that message, not a re-encoding of the Watermill one, with
// every Dlq-* header; a replayed dead letter's old Dlq-* headers are replaced.
func TestDeadLetterer_on_a_publisher_writes_every_header(t *testing.T) {
	env := newDLQEnv(t, false)
	data := []byte(`{"stored":"as is"}`)
	h := originalHeaders("ev-1")
	h.Set(middleware.HeaderReason, "stale reason of an earlier dead letter")
	msg := deliveredStored(t, env.publishAndFetch(t, data, h))
	msg.Payload = []byte(`{"decoded":"differently"}`)

	out, err := env.dl.Middleware(handlerReturning(new(int), middleware.Permanent(errors.New("invalid user"))))(msg)
	require.NoError(t, err, "dead-lettered: the router acks")
	assert.Nil(t, out)

	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	dm := got[0]
	assert.Equal(t, "dlq."+testSubject, dm.Subject)
	assert.Equal(t, data, dm.Data, "the stored payload, not the Watermill one")
	want := nats.Header{
		marshaler.HeaderID:          {"ev-1"},
		marshaler.HeaderType:        {"user.created"},
		marshaler.HeaderSpecVersion: {"1.0"},
		"X-Custom":                  {"a", "b"},
		"Dlq-Original-Nats-Msg-Id":  {"ev-1"},
		nats.MsgIdHdr:               {"dlq:AUTH_EVENTS:users:1"},
		middleware.HeaderSubject:    {testSubject},
		middleware.HeaderStream:     {testStream},
		middleware.HeaderConsumer:   {testConsumer},
		middleware.HeaderStreamSeq:  {"1"},
		middleware.HeaderDeliveries: {"1"},
		middleware.HeaderHandler:    {testConsumer},
		middleware.HeaderReason:     {middleware.ReasonPermanent},
		middleware.HeaderError:      {"invalid user"},
		middleware.HeaderTime:       {"2025-01-02T03:04:05Z"},
	}
	assert.Equal(t, want, dm.Header)
	v := middleware.VerdictOf(msg)
	assert.Equal(t, transport.DeadLettered, v.Kind)
	assert.Equal(t, middleware.ReasonPermanent, v.Reason)
	assert.Equal(t, "dlq."+testSubject, v.DeadLetterSubject)
}

func TestDeadLetterer_dedup_id_is_stable_per_stream_seq_same_message_twice_is_stored_once(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		// twice dead-letters the message of stream seq 1 a second time,
		// one clock second later and for another reason.
		twice func(t *testing.T, env *dlqEnv, raw natsjs.Msg)
	}{
		{"Send with the same stream seq", func(t *testing.T, env *dlqEnv, raw natsjs.Msg) {
			require.NoError(t, env.dl.Send(testCtx(t), middleware.Record{
				Subject: raw.Subject(), Header: raw.Headers(), Data: raw.Data(),
				Stream: testStream, Consumer: testConsumer, StreamSeq: 1, Reason: middleware.ReasonMaxDeliver,
			}))
		}},
		{"middleware on a redelivery whose ack was lost", func(t *testing.T, env *dlqEnv, raw natsjs.Msg) {
			msg := deliveredStored(t, raw)
			transport.FromContext(msg.Context()).Attempt = 2
			_, err := env.dl.Middleware(handlerReturning(new(int), middleware.DeadLetter(middleware.ReasonMaxDeliver, boom)))(msg)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, false)
			raw := env.publishAndFetch(t, []byte(`{}`), originalHeaders("ev-1"))
			ctx := testCtx(t)
			rec := middleware.Record{
				Subject: raw.Subject(), Header: raw.Headers(), Data: raw.Data(),
				Stream: testStream, Consumer: testConsumer, StreamSeq: 1, Reason: middleware.ReasonPermanent,
			}
			assert.Equal(t, "dlq:AUTH_EVENTS:users:1", middleware.MsgID(rec))
			require.NoError(t, env.dl.Send(ctx, rec))

			env.clock.Advance(time.Second)
			tt.twice(t, env, raw)

			got := env.dlqMessages(t)
			require.Len(t, got, 1, "stored once")
			assert.Equal(t, middleware.ReasonPermanent, got[0].Header.Get(middleware.HeaderReason), "the first one stays")
			assert.Equal(t, "2025-01-02T03:04:05Z", got[0].Header.Get(middleware.HeaderTime))

			// Another stream message is another dead letter.
			rec.StreamSeq = 2
			assert.Equal(t, "dlq:AUTH_EVENTS:users:2", middleware.MsgID(rec))
			require.NoError(t, env.dl.Send(ctx, rec))
			assert.Len(t, env.dlqMessages(t), 2)
			// So is the same message given up by another group.
			rec.StreamSeq, rec.Consumer = 1, "audit"
			assert.Equal(t, "dlq:AUTH_EVENTS:audit:1", middleware.MsgID(rec))
			require.NoError(t, env.dl.Send(ctx, rec))
			assert.Len(t, env.dlqMessages(t), 3)
		})
	}
}

// TestDeadLetterer_event_near_max_payload_is_stored_truncated_with_original_stream_and_seq
// dead-letters an event that fits the server's max_payload but not with the
// dead-letter headers added: the dead letter keeps every header, carries
// Dlq-Truncated (the original size) and a prefix of the payload, and the
// original stays whole in its stream at the stream and seq it names.
func TestDeadLetterer_event_near_max_payload_is_stored_truncated_with_original_stream_and_seq(t *testing.T) {
	env := newDLQEnv(t, false)
	limit := env.tr.MaxPayload()
	require.Equal(t, int(env.srv.Conn.MaxPayload()), limit)
	require.GreaterOrEqual(t, limit, 1<<20, "the server's default max_payload is 1 MiB")
	// The original fits with its headers (about 130 bytes); the dead letter
	// would not, with its own (about 450).
	data := bytes.Repeat([]byte("x"), limit-256)
	raw := env.publishAndFetch(t, data, originalHeaders("ev-big"))

	_, err := env.dl.Middleware(handlerReturning(new(int), middleware.Permanent(errors.New("too big to handle"))))(deliveredStored(t, raw))
	require.NoError(t, err, "stored, so acked")

	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	dm := got[0]
	h := dm.Header
	assert.Equal(t, strconv.Itoa(len(data)), h.Get(middleware.HeaderTruncated))
	assert.Equal(t, testStream, h.Get(middleware.HeaderStream))
	assert.Equal(t, "1", h.Get(middleware.HeaderStreamSeq))
	assert.Equal(t, middleware.ReasonPermanent, h.Get(middleware.HeaderReason))
	assert.Equal(t, "ev-big", h.Get(marshaler.HeaderID), "the original headers are kept whole")
	assert.Equal(t, []string{"a", "b"}, h.Values("X-Custom"))
	assert.Equal(t, "dlq:AUTH_EVENTS:users:1", h.Get(nats.MsgIdHdr))
	assert.Less(t, len(dm.Data), len(data))
	assert.Greater(t, len(dm.Data), limit/2, "only what does not fit is cut")
	assert.True(t, bytes.HasPrefix(data, dm.Data), "a prefix of the original payload")

	s, err := env.srv.JS.Stream(testCtx(t), testStream)
	require.NoError(t, err)
	original, err := s.GetMsg(testCtx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, data, original.Data, "the original is whole where the headers point")
}

func TestDeadLetterer_middleware_dead_letters_verdicts_and_passes_other_errors(t *testing.T) {
	boom := errors.New("boom\r\nsecond line")
	tests := []struct {
		name       string
		err        error
		wantReason string // "" = not dead-lettered
		wantError  string
	}{
		{"permanent", middleware.Permanent(boom), middleware.ReasonPermanent, "boom  second line"},
		{"max deliver verdict", middleware.DeadLetter(middleware.ReasonMaxDeliver, boom), middleware.ReasonMaxDeliver, "boom  second line"},
		{"schema version verdict", middleware.DeadLetter(middleware.ReasonSchemaVersion, nil), middleware.ReasonSchemaVersion, ""},
		{"ordinary error", boom, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, false)
			msg := delivered("ev-1", testSubject, 42, 3)
			calls := 0
			out, err := env.dl.Middleware(func(*message.Message) ([]*message.Message, error) {
				calls++
				return []*message.Message{message.NewMessage("out", nil)}, tt.err
			})(msg)
			assert.Nil(t, out)
			assert.Equal(t, 1, calls)

			got := env.dlqMessages(t)
			if tt.wantReason == "" {
				assert.ErrorIs(t, err, boom)
				assert.Empty(t, got)
				assert.Empty(t, nakDelay(msg), "Retry, not the DeadLetterer, schedules ordinary retries")
				return
			}
			require.NoError(t, err, "dead-lettered: the router acks")
			require.Len(t, got, 1)
			h := got[0].Header
			assert.Equal(t, "dlq."+testSubject, got[0].Subject)
			assert.Equal(t, []byte(msg.Payload), got[0].Data)
			assert.Equal(t, tt.wantReason, h.Get(middleware.HeaderReason))
			assert.Equal(t, tt.wantError, h.Get(middleware.HeaderError))
			assert.Equal(t, "42", h.Get(middleware.HeaderStreamSeq))
			assert.Equal(t, "3", h.Get(middleware.HeaderDeliveries))
			assert.Equal(t, testConsumer, h.Get(middleware.HeaderHandler))
			assert.Equal(t, "dlq:AUTH_EVENTS:users:42", h.Get(nats.MsgIdHdr))
			assert.Equal(t, "ev-1", h.Get(marshaler.HeaderID), "metadata travels as headers when the delivery has no stored message")
			assert.Empty(t, h.Get(middleware.HeaderTruncated))
			assert.Equal(t, tt.wantReason, middleware.VerdictOf(msg).Reason)
		})
	}
}

func TestDeadLetterer_publish_failure_is_an_error_and_never_an_ack(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		cfg   middleware.DeadLetterConfig
		trCfg jetstream.TransportConfig
		cause error
	}{
		{"no dead-letter stream", middleware.DeadLetterConfig{}, jetstream.TransportConfig{}, transport.ErrNoStream},
		{"dead letter captured by an unexpected stream",
			middleware.DeadLetterConfig{SubjectPrefix: "auth.dlq", Stream: "DLQ"},
			jetstream.TransportConfig{DeadLetterStream: "DLQ"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, true)
			tt.cfg.RetryBackoff = transport.Backoff{Jitter: -1}
			tt.cfg.PublishTimeout = 2 * time.Second
			dl, err := middleware.NewDeadLetterer(newTransport(t, env.srv.Conn, tt.trCfg), tt.cfg)
			require.NoError(t, err)
			msg := delivered("ev-1", testSubject, 1, 2)

			_, err = dl.Middleware(handlerReturning(new(int), middleware.Permanent(boom)))(msg)

			require.Error(t, err, "the router must Nack")
			assert.ErrorIs(t, err, transport.ErrDeadLetter)
			assert.ErrorIs(t, err, transport.ErrDeadLetter)
			assert.ErrorIs(t, err, boom)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
			assert.Equal(t, "2s", nakDelay(msg), "redelivered after RetryBackoff")
			assert.Equal(t, transport.Retried, middleware.VerdictOf(msg).Kind, "redelivered, never acked while the dead letter is not stored")
			s, err := env.srv.JS.Stream(testCtx(t), testStream)
			require.NoError(t, err)
			info, err := s.Info(testCtx(t))
			require.NoError(t, err)
			assert.Zero(t, info.State.Msgs, "nothing landed in another stream")

			raw := env.publishAndFetch(t, []byte("x"), nil)
			assert.ErrorIs(t, dl.Undecodable(testCtx(t), transport.FromContext(deliveredStored(t, raw).Context()), marshaler.ErrUnmarshal), transport.ErrDeadLetter, "the subscriber naks instead of acking")
		})
	}
}

// TestDeadLetterer_failed_publish_remembers_the_verdict_retries_without_the_handler_and_forgets_once_stored
// runs the middleware on successive deliveries of one stream message while
// the DLQ stream is missing, then once it exists.
func TestDeadLetterer_failed_publish_remembers_the_verdict_retries_without_the_handler_and_forgets_once_stored(t *testing.T) {
	env := newDLQEnv(t, true)
	boom := errors.New("invalid user")
	calls := map[uint64]int{} // per stream seq
	fail := true
	h := env.dl.Middleware(func(m *message.Message) ([]*message.Message, error) {
		calls[transport.FromContext(m.Context()).StreamSeq]++
		if fail {
			return nil, middleware.Permanent(boom)
		}
		return nil, nil
	})

	// Attempt 1: the verdict, the publish fails.
	msg := delivered("ev-1", testSubject, 7, 1)
	_, err := h(msg)
	require.ErrorIs(t, err, transport.ErrDeadLetter)
	assert.Equal(t, 1, calls[7])
	assert.Equal(t, "1s", nakDelay(msg))

	// Attempt 2: the verdict is remembered: no handler call, the publish is
	// retried (and fails again), the verdict and its cause are kept.
	msg = delivered("ev-1", testSubject, 7, 2)
	_, err = h(msg)
	require.ErrorIs(t, err, transport.ErrDeadLetter)
	assert.ErrorIs(t, err, boom, "the remembered cause")
	reason, _ := middleware.Classify(err)
	assert.Equal(t, middleware.ReasonPermanent, reason)
	assert.Equal(t, 1, calls[7], "the handler is not called again")
	assert.Equal(t, "2s", nakDelay(msg))

	// The memory is per stream message: another one runs its handler.
	_, err = h(delivered("ev-2", testSubject, 8, 1))
	require.ErrorIs(t, err, transport.ErrDeadLetter)
	assert.Equal(t, 1, calls[8])

	// Attempt 3, the DLQ stream exists: stored without a handler call.
	createDLQ(t, env.srv)
	msg = delivered("ev-1", testSubject, 7, 3)
	_, err = h(msg)
	require.NoError(t, err, "stored: the router acks")
	assert.Equal(t, 1, calls[7])
	assert.Equal(t, middleware.ReasonPermanent, middleware.VerdictOf(msg).Reason)
	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	assert.Equal(t, middleware.ReasonPermanent, got[0].Header.Get(middleware.HeaderReason))
	assert.Equal(t, "invalid user", got[0].Header.Get(middleware.HeaderError))
	assert.Equal(t, "7", got[0].Header.Get(middleware.HeaderStreamSeq))
	assert.Equal(t, "3", got[0].Header.Get(middleware.HeaderDeliveries))

	// Forgotten once stored: a later delivery of the same message (its ack
	// was lost) runs the handler again.
	fail = false
	_, err = h(delivered("ev-1", testSubject, 7, 4))
	require.NoError(t, err)
	assert.Equal(t, 2, calls[7], "the verdict was forgotten")
	assert.Len(t, env.dlqMessages(t), 1)
}

func TestDeadLetterer_error_text_is_truncated_on_a_rune_boundary(t *testing.T) {
	env := newDLQEnv(t, false)
	dl, err := middleware.NewDeadLetterer(env.tr, middleware.DeadLetterConfig{MaxErrorLen: 5})
	require.NoError(t, err)
	require.NoError(t, dl.Send(testCtx(t), middleware.Record{Subject: testSubject, Data: []byte("x"), Err: errors.New("abcdé")}))
	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	assert.Equal(t, "abcd", got[0].Header.Get(middleware.HeaderError), "é is two bytes: cut before it")
	assert.Equal(t, middleware.ReasonHandlerError, got[0].Header.Get(middleware.HeaderReason))
	assert.True(t, strings.HasPrefix(got[0].Header.Get(nats.MsgIdHdr), "dlq:sha256:"), "no stream sequence: content hash")
}

func TestDeadLetterer_config_validation(t *testing.T) {
	srv := eventstest.NewServer(t)
	tr := newTransport(t, srv.Conn, jetstream.TransportConfig{})
	for _, cfg := range []middleware.DeadLetterConfig{
		{SubjectPrefix: "dlq.>"},
		{SubjectPrefix: "dlq with space"},
		{PublishTimeout: -time.Second},
		{MaxErrorLen: -1},
		{Stream: "a.b"},
		{RetryBackoff: transport.Backoff{Multiplier: 0.5}},
	} {
		_, err := middleware.NewDeadLetterer(tr, cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := middleware.NewDeadLetterer(nil, middleware.DeadLetterConfig{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	err = (&middleware.DeadLetterer{}).Send(context.Background(), middleware.Record{})
	assert.ErrorIs(t, err, middleware.ErrNoRawMessage)
}
