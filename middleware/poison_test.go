package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

const (
	testStream   = "AUTH_EVENTS"
	testConsumer = "users"
	testSubject  = "auth.user.created"
)

// dlqEnv is an embedded server with the events stream and, unless noDLQ,
// the dead-letter stream.
type dlqEnv struct {
	srv   *eventstest.Server
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
		_, err = srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}})
		require.NoError(t, err)
	}
	clock := eventstest.NewClock(t0)
	dl, err := middleware.NewDeadLetterer(srv.Conn, middleware.DeadLetterConfig{
		Clock:        clock,
		RetryBackoff: middleware.Backoff{Jitter: -1},
	})
	require.NoError(t, err)
	return &dlqEnv{srv: srv, clock: clock, dl: dl}
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

func TestDeadLetterer_undecodable_message_lands_unchanged_with_every_header(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
	}{
		{"malformed payload", errors.Join(marshaler.ErrUnmarshal, marshaler.ErrMalformed), middleware.ReasonUnmarshal},
		{"unknown schema major", errors.Join(marshaler.ErrUnmarshal, marshaler.ErrUnknownSchemaMajor), middleware.ReasonSchemaVersion},
		{"any other decode error", errors.New("weird"), middleware.ReasonUnmarshal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, false)
			data := []byte("{not json")
			raw := env.publishAndFetch(t, data, originalHeaders("ev-1"))

			require.NoError(t, env.dl.Undecodable(testCtx(t), raw, tt.err))

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
				nats.MsgIdHdr:               {"dlq:AUTH_EVENTS:1"},
				middleware.HeaderSubject:    {testSubject},
				middleware.HeaderStream:     {testStream},
				middleware.HeaderConsumer:   {testConsumer},
				middleware.HeaderStreamSeq:  {"1"},
				middleware.HeaderDeliveries: {"1"},
				middleware.HeaderReason:     {tt.wantReason},
				middleware.HeaderError:      {strings.ReplaceAll(tt.err.Error(), "\n", " ")},
				middleware.HeaderTime:       {"2025-01-02T03:04:05Z"},
			}
			assert.Equal(t, want, dm.Header)
		})
	}
}

func TestDeadLetterer_same_message_dead_lettered_twice_is_stored_once(t *testing.T) {
	env := newDLQEnv(t, false)
	raw := env.publishAndFetch(t, []byte(`{}`), originalHeaders("ev-1"))
	ctx := testCtx(t)

	require.NoError(t, env.dl.Undecodable(ctx, raw, marshaler.ErrUnmarshal))
	// The advisory path for the same stream sequence, later.
	env.clock.Advance(time.Second)
	ack, err := env.dl.Send(ctx, middleware.Record{
		Subject: raw.Subject(), Header: raw.Headers(), Data: raw.Data(),
		Stream: testStream, StreamSeq: 1, Reason: middleware.ReasonMaxDeliveriesAdvisory,
	})
	require.NoError(t, err)
	assert.True(t, ack.Duplicate)
	assert.Len(t, env.dlqMessages(t), 1)
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
			assert.Equal(t, "dlq:AUTH_EVENTS:42", h.Get(nats.MsgIdHdr))
			assert.Equal(t, "ev-1", h.Get(marshaler.HeaderID), "metadata travels as headers without a raw message")
			assert.Empty(t, h.Get(jetstream.MetadataStreamSeq), "transport metadata is not copied")
			assert.Equal(t, tt.wantReason, msg.Metadata.Get(middleware.MetadataDeadLetterReason))
		})
	}
}

func TestDeadLetterer_publish_failure_is_an_error_and_never_an_ack(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		cfg  middleware.DeadLetterConfig
	}{
		{"no dead-letter stream", middleware.DeadLetterConfig{}},
		{"dead letter captured by an unexpected stream", middleware.DeadLetterConfig{SubjectPrefix: "auth.dlq", Stream: "DLQ"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, true)
			tt.cfg.RetryBackoff = middleware.Backoff{Jitter: -1}
			tt.cfg.PublishTimeout = 2 * time.Second
			dl, err := middleware.NewDeadLetterer(env.srv.Conn, tt.cfg)
			require.NoError(t, err)
			msg := delivered("ev-1", testSubject, 1, 2)

			_, err = dl.Middleware(handlerReturning(new(int), middleware.Permanent(boom)))(msg)

			require.Error(t, err, "the router must Nack")
			assert.ErrorIs(t, err, middleware.ErrDeadLetter)
			assert.ErrorIs(t, err, boom)
			assert.Equal(t, "2s", msg.Metadata.Get(jetstream.MetadataNakDelay), "redelivered after RetryBackoff")
			assert.Empty(t, msg.Metadata.Get(middleware.MetadataDeadLetterReason))

			raw := env.publishAndFetch(t, []byte("x"), nil)
			assert.ErrorIs(t, dl.Undecodable(testCtx(t), raw, marshaler.ErrUnmarshal), middleware.ErrDeadLetter, "the subscriber naks instead of terminating")
		})
	}
}

func TestDeadLetterer_error_text_is_truncated_on_a_rune_boundary(t *testing.T) {
	env := newDLQEnv(t, false)
	dl, err := middleware.NewDeadLetterer(env.srv.Conn, middleware.DeadLetterConfig{MaxErrorLen: 5})
	require.NoError(t, err)
	_, err = dl.Send(testCtx(t), middleware.Record{Subject: testSubject, Data: []byte("x"), Err: errors.New("abcdé")})
	require.NoError(t, err)
	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	assert.Equal(t, "abcd", got[0].Header.Get(middleware.HeaderError), "é is two bytes: cut before it")
	assert.Equal(t, middleware.ReasonHandlerError, got[0].Header.Get(middleware.HeaderReason))
	assert.True(t, strings.HasPrefix(got[0].Header.Get(nats.MsgIdHdr), "dlq:sha256:"), "no stream sequence: content hash")
}

func TestDeadLetterer_config_validation(t *testing.T) {
	srv := eventstest.NewServer(t)
	for _, cfg := range []middleware.DeadLetterConfig{
		{SubjectPrefix: "dlq.>"},
		{SubjectPrefix: "dlq with space"},
		{PublishTimeout: -time.Second},
		{MaxErrorLen: -1},
		{Stream: "a.b"},
		{RetryBackoff: middleware.Backoff{Multiplier: 0.5}},
	} {
		_, err := middleware.NewDeadLetterer(srv.Conn, cfg)
		assert.ErrorIs(t, err, middleware.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := middleware.NewDeadLetterer(nil, middleware.DeadLetterConfig{})
	assert.ErrorIs(t, err, middleware.ErrInvalidConfig)
	_, err = (&middleware.DeadLetterer{}).Send(context.Background(), middleware.Record{})
	assert.ErrorIs(t, err, middleware.ErrNoRawMessage)
}
