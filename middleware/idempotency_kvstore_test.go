package middleware_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

func newKVStore(t *testing.T, srv *eventstest.Server, cfg jetstream.KVStoreConfig) *jetstream.KVStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := jetstream.NewKVStore(ctx, srv.Connect(t), cfg)
	require.NoError(t, err)
	return s
}

func TestKVStore_same_event_delivered_twice_is_handled_once_across_two_stores(t *testing.T) {
	srv := eventstest.NewServer(t)
	// Two "processes": separate connections, separate stores, one bucket.
	a := newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{Bucket: "PROCESSED"}), nil)
	b := newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{Bucket: "PROCESSED"}), nil)

	var calls atomic.Int32
	handler := func(*message.Message) ([]*message.Message, error) { calls.Add(1); return nil, nil }

	// The event published twice (fresh Nats-Msg-Id): two stream messages.
	_, err := a.Middleware(handler)(delivered("ev-1", "auth.user.created", 1, 1))
	require.NoError(t, err)
	_, err = b.Middleware(handler)(delivered("ev-1", "auth.user.created", 2, 1))
	require.NoError(t, err)
	assert.Equal(t, int32(1), calls.Load())

	// Another event is not affected, nor the same id under another consumer.
	_, err = b.Middleware(handler)(delivered("ev-2", "auth.user.created", 3, 1))
	require.NoError(t, err)
	other := delivered("ev-1", "auth.user.created", 1, 1)
	transport.FromContext(other.Context()).Consumer = "audit"
	_, err = b.Middleware(handler)(other)
	require.NoError(t, err)
	assert.Equal(t, int32(3), calls.Load())
}

func TestKVStore_concurrent_deliveries_across_processes_run_the_handler_once(t *testing.T) {
	srv := eventstest.NewServer(t)
	stores := []*middleware.Idempotency{
		newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{}), nil),
		newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{}), nil),
	}
	var calls atomic.Int32
	handler := func(*message.Message) ([]*message.Message, error) { calls.Add(1); return nil, nil }

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := stores[i%2].Middleware(handler)(delivered("ev-1", "auth.user.created", uint64(i+1), 1))
			assert.NoError(t, err, "a duplicate is acked, not failed")
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), calls.Load())
}

func TestKVStore_failed_handler_releases_and_redelivery_takes_over(t *testing.T) {
	srv := eventstest.NewServer(t)
	store := newKVStore(t, srv, jetstream.KVStoreConfig{})
	mw := newIdempotency(t, store, nil)

	calls := 0
	_, err := mw.Middleware(handlerReturning(&calls, errStoreDown))(delivered("ev-1", "s.a", 1, 1))
	require.ErrorIs(t, err, errStoreDown)
	_, err = mw.Middleware(handlerReturning(&calls, nil))(delivered("ev-1", "s.a", 1, 2))
	require.NoError(t, err)
	_, err = mw.Middleware(handlerReturning(&calls, nil))(delivered("ev-1", "s.a", 1, 3))
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "failed once, handled once, then skipped")

	// A claim left by a crashed delivery (never released) is taken over by
	// the broker's next attempt of the same message.
	ctx := context.Background()
	c, err := store.Claim(ctx, "ns/ev-9", idempotency.Holder{Stream: "S", StreamSeq: 9, Attempt: 1})
	require.NoError(t, err)
	require.Equal(t, idempotency.ClaimAcquired, c.Status)
	again, err := store.Claim(ctx, "ns/ev-9", idempotency.Holder{Stream: "S", StreamSeq: 9, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimBusy, again.Status)
	next, err := store.Claim(ctx, "ns/ev-9", idempotency.Holder{Stream: "S", StreamSeq: 9, Attempt: 2})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimAcquired, next.Status)
	// The superseded holder's release does not drop the new claim.
	require.NoError(t, store.Release(ctx, c))
	dup, err := store.Claim(ctx, "ns/ev-9", idempotency.Holder{Stream: "S", StreamSeq: 10, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimDuplicate, dup.Status)
}

func TestKVStore_unidentified_claim_expires_by_clock(t *testing.T) {
	srv := eventstest.NewServer(t)
	clock := eventstest.NewClock(t0)
	store := newKVStore(t, srv, jetstream.KVStoreConfig{ClaimTTL: time.Minute, Clock: clock})
	ctx := context.Background()
	_, err := store.Claim(ctx, "k", idempotency.Holder{})
	require.NoError(t, err)
	c, err := store.Claim(ctx, "k", idempotency.Holder{})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimBusy, c.Status)
	clock.Advance(time.Minute)
	c, err = store.Claim(ctx, "k", idempotency.Holder{})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimAcquired, c.Status)
}

func TestKVStore_plugs_into_watermill_deduplicator(t *testing.T) {
	srv := eventstest.NewServer(t)
	dedup := &wmmiddleware.Deduplicator{
		KeyFactory: wmmiddleware.NewMessageHasherFromMetadataField("ce-id"),
		Repository: newKVStore(t, srv, jetstream.KVStoreConfig{Bucket: "DEDUP"}),
		Timeout:    5 * time.Second,
	}
	calls := 0
	h := dedup.Middleware(handlerReturning(&calls, nil))
	for seq := range uint64(3) {
		_, err := h(delivered("ev-1", "s.a", seq+1, 1))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, calls)
}

func TestKVStore_keys_with_any_characters_and_length(t *testing.T) {
	srv := eventstest.NewServer(t)
	store := newKVStore(t, srv, jetstream.KVStoreConfig{})
	ctx := context.Background()
	long := string(make([]byte, 1000))
	for _, key := range []string{"a b/c*>.", "ünïcödé", long, long + "x"} {
		dup, err := store.IsDuplicate(ctx, key)
		require.NoError(t, err, "%q", key[:min(len(key), 10)])
		assert.False(t, dup)
		dup, err = store.IsDuplicate(ctx, key)
		require.NoError(t, err)
		assert.True(t, dup)
	}
}

func TestKVStore_config_validation(t *testing.T) {
	srv := eventstest.NewServer(t)
	for _, cfg := range []jetstream.KVStoreConfig{
		{Bucket: "has.dot"},
		{TTL: -time.Second},
		{Replicas: 7},
	} {
		_, err := jetstream.NewKVStore(context.Background(), srv.Conn, cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := jetstream.NewKVStore(context.Background(), nil, jetstream.KVStoreConfig{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}

func TestKVStore_async_claims_and_marks_answer_as_the_synchronous_ones(t *testing.T) {
	srv := eventstest.NewServer(t)
	s := newKVStore(t, srv, jetstream.KVStoreConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h1 := idempotency.Holder{Stream: "S", StreamSeq: 1, Attempt: 1}
	h2 := idempotency.Holder{Stream: "S", StreamSeq: 2, Attempt: 1}

	first := s.ClaimAsync("ns/ev-1", h1)
	second := s.ClaimAsync("ns/ev-1", h2) // another copy of the event, at once
	c1, err := first(ctx)
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimAcquired, c1.Status)
	c2, err := second(ctx)
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimDuplicate, c2.Status, "the first claim holds: one creator wins")

	require.NoError(t, s.Complete(ctx, c1))
	require.NoError(t, s.Flush(ctx), "the asynchronous mark is stored")
	c3, err := s.ClaimAsync("ns/ev-1", idempotency.Holder{Stream: "S", StreamSeq: 3, Attempt: 1})(ctx)
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimProcessed, c3.Status)
	assert.Zero(t, s.AsyncErrors())

	// A released claim leaves a delete marker: the async create falls back
	// to the synchronous path and acquires.
	c4, err := s.ClaimAsync("ns/ev-2", h1)(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, c4))
	c5, err := s.ClaimAsync("ns/ev-2", idempotency.Holder{Stream: "S", StreamSeq: 1, Attempt: 2})(ctx)
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimAcquired, c5.Status)
}

// prefetched is delivered with the stored headers a module publisher
// writes (Nats-Msg-Id equal to ce-id), its claim started by Prefetch as the
// router does when the message is queued.
func prefetched(mw *middleware.Idempotency, eventID string, streamSeq, attempt uint64) *message.Message {
	msg := delivered(eventID, "auth.user.created", streamSeq, attempt)
	dv := transport.FromContext(msg.Context())
	dv.Header = map[string][]string{marshaler.HeaderMsgID: {eventID}, marshaler.HeaderID: {eventID}}
	mw.Prefetch(dv)
	return msg
}

func TestKVStore_prefetched_claims_of_concurrent_copies_across_processes_run_the_handler_once(t *testing.T) {
	srv := eventstest.NewServer(t)
	procs := []*middleware.Idempotency{
		newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{}), nil),
		newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{}), nil),
	}
	var calls atomic.Int32
	handler := func(*message.Message) ([]*message.Message, error) { calls.Add(1); return nil, nil }
	// Eight stored copies of one event, claimed as they are queued in two
	// processes, then handled at once.
	msgs := make([]*message.Message, 8)
	for i := range msgs {
		msgs[i] = prefetched(procs[i%2], "ev-1", uint64(i+1), 1)
	}
	var wg sync.WaitGroup
	for i, msg := range msgs {
		wg.Go(func() {
			_, err := procs[i%2].Middleware(handler)(msg)
			assert.NoError(t, err, "a duplicate is acked, not failed")
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), calls.Load())
}

func TestKVStore_redelivery_after_a_stored_mark_is_skipped_by_another_process(t *testing.T) {
	// The ack of a handled event was lost (the server died before storing
	// it): the broker redelivers it, here to another process.
	srv := eventstest.NewServer(t)
	storeA := newKVStore(t, srv, jetstream.KVStoreConfig{})
	a := newIdempotency(t, storeA, nil)
	b := newIdempotency(t, newKVStore(t, srv, jetstream.KVStoreConfig{}), nil)
	calls := 0
	_, err := a.Middleware(handlerReturning(&calls, nil))(prefetched(a, "ev-1", 5, 1))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, storeA.Flush(ctx), "the asynchronous mark is stored")
	_, err = b.Middleware(handlerReturning(&calls, nil))(prefetched(b, "ev-1", 5, 2))
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "the redelivery is acked unhandled")
}

func TestKVStore_crash_between_handler_and_mark_runs_the_handler_again_once(t *testing.T) {
	// Process A claimed the event and died in its handler (or before its
	// mark was sent): nothing is marked, the claim stays. The redelivery
	// (a later attempt of the same message) takes the claim over and
	// handles it: at-least-once, as documented. Later attempts are skipped.
	srv := eventstest.NewServer(t)
	storeA := newKVStore(t, srv, jetstream.KVStoreConfig{})
	ctx := context.Background()
	c, err := storeA.ClaimAsync("AUTH_EVENTS.users/ev-1", idempotency.Holder{Stream: "AUTH_EVENTS", StreamSeq: 5, Attempt: 1})(ctx)
	require.NoError(t, err)
	require.Equal(t, idempotency.ClaimAcquired, c.Status)

	storeB := newKVStore(t, srv, jetstream.KVStoreConfig{})
	b := newIdempotency(t, storeB, nil)
	calls := 0
	_, err = b.Middleware(handlerReturning(&calls, nil))(prefetched(b, "ev-1", 5, 2))
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "the redelivery runs the handler")
	require.NoError(t, storeB.Flush(ctx))
	_, err = b.Middleware(handlerReturning(&calls, nil))(prefetched(b, "ev-1", 5, 3))
	require.NoError(t, err)
	// Another stored copy of the event, too.
	_, err = b.Middleware(handlerReturning(&calls, nil))(prefetched(b, "ev-1", 9, 1))
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "handled once since the crash")
}

func TestKVStore_mark_that_cannot_be_stored_is_reported_and_flush_returns(t *testing.T) {
	srv := eventstest.NewServer(t)
	var reported atomic.Int32
	var first atomic.Value
	store := newKVStore(t, srv, jetstream.KVStoreConfig{Bucket: "GONE", OnError: func(err error) {
		if reported.Add(1) == 1 {
			first.Store(err)
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := store.ClaimAsync("ns/ev-1", idempotency.Holder{Stream: "S", StreamSeq: 1, Attempt: 1})(ctx)
	require.NoError(t, err)
	require.NoError(t, srv.JS.DeleteKeyValue(ctx, "GONE"))

	require.NoError(t, store.Complete(ctx, c), "sent; its failure is asynchronous")
	require.NoError(t, store.Flush(ctx), "the failed mark is answered")
	assert.Equal(t, uint64(1), store.AsyncErrors())
	require.Equal(t, int32(1), reported.Load())
	err = first.Load().(error)
	assert.ErrorIs(t, err, idempotency.ErrStore)
	assert.Contains(t, err.Error(), "ns/ev-1")
}

func TestKVStore_mark_sent_while_disconnected_is_stored_after_the_reconnect(t *testing.T) {
	srv := eventstest.NewServer(t)
	store := newKVStore(t, srv, jetstream.KVStoreConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := idempotency.Holder{Stream: "S", StreamSeq: 1, Attempt: 1}
	c, err := store.ClaimAsync("ns/ev-1", h)(ctx)
	require.NoError(t, err)

	srv.Stop()
	require.NoError(t, store.Complete(ctx, c), "buffered by the client while disconnected")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	err = store.Flush(short)
	cancelShort()
	require.ErrorIs(t, err, idempotency.ErrStore)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "1 processed marks in flight")

	require.NoError(t, srv.Restart())
	require.NoError(t, store.Flush(ctx), "answered once the client reconnected")
	assert.Zero(t, store.AsyncErrors())
	again, err := store.Claim(ctx, "ns/ev-1", idempotency.Holder{Stream: "S", StreamSeq: 2, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimProcessed, again.Status)
}

func TestKVStore_writes_whose_answers_a_disconnect_lost_are_not_waited_for(t *testing.T) {
	// A claim and a mark reach the server but their answers never come
	// (here: the bucket's stream is gone and a subscriber that never
	// answers takes the publishes), then the connection drops. The claim
	// must fall back to the synchronous path at once, not wait for its
	// context to end; the mark must be sent again, and stored.
	srv := eventstest.NewServer(t)
	store := newKVStore(t, srv, jetstream.KVStoreConfig{Bucket: "LOSSY"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := idempotency.Holder{Stream: "S", StreamSeq: 1, Attempt: 1}
	claimed, err := store.ClaimAsync("ns/done", h)(ctx)
	require.NoError(t, err)

	require.NoError(t, srv.JS.DeleteKeyValue(ctx, "LOSSY"))
	swallowed := make(chan string, 4)
	holeConn := srv.Connect(t)
	_, err = holeConn.Subscribe("$KV.LOSSY.>", func(m *nats.Msg) { swallowed <- m.Subject })
	require.NoError(t, err)
	require.NoError(t, holeConn.Flush())

	pending := store.ClaimAsync("ns/pending", idempotency.Holder{Stream: "S", StreamSeq: 2, Attempt: 1})
	require.NoError(t, store.Complete(ctx, claimed))
	for range 2 {
		select {
		case <-swallowed:
		case <-ctx.Done():
			t.Fatal("the claim and the mark did not reach the server")
		}
	}
	_, err = srv.JS.CreateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "LOSSY"})
	require.NoError(t, err)

	srv.Stop()
	require.NoError(t, srv.Restart())
	c, err := pending(ctx)
	require.NoError(t, err, "not the context's deadline: the lost answer is not waited for")
	assert.Equal(t, idempotency.ClaimAcquired, c.Status)
	require.NoError(t, store.Flush(ctx), "the mark sent again is answered")
	assert.Zero(t, store.AsyncErrors())
	again, err := store.Claim(ctx, "ns/done", idempotency.Holder{Stream: "S", StreamSeq: 3, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimProcessed, again.Status, "the mark sent again was stored")
}
