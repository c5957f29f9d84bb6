package jetstream_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

func TestSubscriberConfig_Validate_rejects_invalid_configs(t *testing.T) {
	f := newSubFixture(t)
	tests := []struct {
		name string
		cfg  jetstream.SubscriberConfig
		also error // a second sentinel the error must match
	}{
		{name: "no stream", cfg: jetstream.SubscriberConfig{}},
		{name: "stream name with a dot", cfg: jetstream.SubscriberConfig{Stream: "A.B"}, also: jetstream.ErrInvalidName},
		{name: "durable with a wildcard", cfg: jetstream.SubscriberConfig{Stream: "S", Durable: "d*"}, also: jetstream.ErrInvalidName},
		{name: "more backoff steps than deliveries", cfg: jetstream.SubscriberConfig{
			Stream: "S", MaxDeliver: 2, BackOff: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second},
		}, also: jetstream.ErrBackOffTooLong},
		{name: "ack wait differs from first backoff", cfg: jetstream.SubscriberConfig{
			Stream: "S", AckWait: 5 * time.Second, BackOff: []time.Duration{time.Second},
		}},
		{name: "negative backoff", cfg: jetstream.SubscriberConfig{Stream: "S", BackOff: []time.Duration{-time.Second}}},
		{name: "max deliver below -1", cfg: jetstream.SubscriberConfig{Stream: "S", MaxDeliver: -2}},
		{name: "negative concurrency", cfg: jetstream.SubscriberConfig{Stream: "S", Concurrency: -1}},
		{name: "max ack pending below concurrency", cfg: jetstream.SubscriberConfig{Stream: "S", Concurrency: 10, MaxAckPending: 5}},
		{name: "in progress not below ack wait", cfg: jetstream.SubscriberConfig{Stream: "S", AckWait: time.Second, InProgressInterval: time.Second}},
		{name: "in progress not below the shortest backoff", cfg: jetstream.SubscriberConfig{
			Stream: "S", BackOff: []time.Duration{2 * time.Second, 500 * time.Millisecond}, InProgressInterval: time.Second,
		}},
		{name: "start sequence policy without a sequence", cfg: jetstream.SubscriberConfig{Stream: "S", DeliverPolicy: natsjs.DeliverByStartSequencePolicy}},
		{name: "empty filter subject", cfg: jetstream.SubscriberConfig{Stream: "S", FilterSubjects: []string{""}}},
		{name: "negative close timeout", cfg: jetstream.SubscriberConfig{Stream: "S", CloseTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jetstream.NewSubscriber(f.srv.Conn, tt.cfg)
			require.ErrorIs(t, err, jetstream.ErrInvalidConfig)
			if tt.also != nil {
				require.ErrorIs(t, err, tt.also)
			}
		})
	}

	t.Run("valid configs", func(t *testing.T) {
		for _, cfg := range []jetstream.SubscriberConfig{
			{Stream: "S"},
			{StreamForTopic: func(topic string) string { return topic }},
			{Stream: "S", MaxDeliver: -1, BackOff: []time.Duration{time.Second, time.Minute}},
			{Stream: "S", MaxDeliver: 2, BackOff: []time.Duration{time.Second, time.Minute}},
			{Stream: "S", AckWait: time.Second, BackOff: []time.Duration{time.Second}},
		} {
			_, err := jetstream.NewSubscriber(f.srv.Conn, cfg)
			require.NoError(t, err)
		}
	})
	t.Run("nil connection", func(t *testing.T) {
		_, err := jetstream.NewSubscriber(nil, jetstream.SubscriberConfig{Stream: "S"})
		require.ErrorIs(t, err, jetstream.ErrInvalidConfig)
	})
}

func TestExponentialNakDelay_doubles_up_to_the_cap(t *testing.T) {
	d := jetstream.ExponentialNakDelay(100*time.Millisecond, time.Second)
	want := []time.Duration{100, 100, 200, 400, 800, 1000, 1000}
	for attempt, w := range want {
		assert.Equal(t, w*time.Millisecond, d(uint64(attempt)), "attempt %d", attempt)
	}
	assert.Equal(t, time.Minute, jetstream.ExponentialNakDelay(time.Second, time.Minute)(1000))
	assert.Equal(t, time.Second, jetstream.DefaultNakDelay(1))
	assert.Equal(t, 4*time.Second, jetstream.DefaultNakDelay(3))
}

func TestSubscriber_applies_consumer_config(t *testing.T) {
	tests := []struct {
		name        string
		cfg         jetstream.SubscriberConfig
		topic       string
		wantAckWait time.Duration
		wantFilter  string
		wantFilters []string
	}{
		{
			name: "explicit values, one filter",
			cfg: jetstream.SubscriberConfig{
				Durable: "explicit", FilterSubjects: []string{"ev.user.*"},
				AckWait: 7 * time.Second, MaxDeliver: 9, MaxAckPending: 42,
			},
			topic: "ev.user.*", wantAckWait: 7 * time.Second, wantFilter: "ev.user.*",
		},
		{
			name: "backoff, several filters",
			cfg: jetstream.SubscriberConfig{
				Durable: "backoff", FilterSubjects: []string{"ev.user.*", "ev.org.*"},
				MaxDeliver: 4, BackOff: []time.Duration{time.Second, 5 * time.Second, 10 * time.Second},
			},
			topic: "ev.user.*", wantAckWait: time.Second, wantFilters: []string{"ev.user.*", "ev.org.*"},
		},
		{
			name:  "defaults: filter is the topic",
			cfg:   jetstream.SubscriberConfig{Durable: "defaults"},
			topic: "ev.user.created", wantAckWait: 30 * time.Second, wantFilter: "ev.user.created",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubFixture(t)
			sub := f.subscriber(tt.cfg)
			f.subscribe(sub, tt.topic)

			info := f.consumerInfo(tt.cfg.Durable)
			c := info.Config
			assert.Equal(t, tt.cfg.Durable, c.Durable)
			assert.Equal(t, natsjs.AckExplicitPolicy, c.AckPolicy)
			assert.Equal(t, tt.wantAckWait, c.AckWait)
			wantMaxDeliver := tt.cfg.MaxDeliver
			if wantMaxDeliver == 0 {
				wantMaxDeliver = jetstream.DefaultSubscriberMaxDeliver
			}
			assert.Equal(t, wantMaxDeliver, c.MaxDeliver)
			wantMaxAckPending := tt.cfg.MaxAckPending
			if wantMaxAckPending == 0 {
				wantMaxAckPending = jetstream.DefaultSubscriberMaxAckPending
			}
			assert.Equal(t, wantMaxAckPending, c.MaxAckPending)
			assert.Equal(t, tt.cfg.BackOff, c.BackOff)
			assert.Equal(t, tt.wantFilter, c.FilterSubject)
			assert.Equal(t, tt.wantFilters, c.FilterSubjects)
		})
	}

	t.Run("an existing durable is updated to the config", func(t *testing.T) {
		f := newSubFixture(t)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, err := f.srv.JS.CreateOrUpdateConsumer(ctx, testStream, natsjs.ConsumerConfig{
			Durable: "old", AckPolicy: natsjs.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: 20, FilterSubject: "ev.>",
		})
		require.NoError(t, err)
		sub := f.subscriber(jetstream.SubscriberConfig{Durable: "old", AckWait: 3 * time.Second, MaxDeliver: 3})
		f.subscribe(sub, "ev.user.*")
		c := f.consumerInfo("old").Config
		assert.Equal(t, 3*time.Second, c.AckWait)
		assert.Equal(t, 3, c.MaxDeliver)
		assert.Equal(t, "ev.user.*", c.FilterSubject)
	})

	t.Run("the default durable is derived from the topic", func(t *testing.T) {
		f := newSubFixture(t)
		sub := f.subscriber(jetstream.SubscriberConfig{})
		f.subscribe(sub, "ev.user.*")
		f.subscribe(sub, "ev_user_*") // would collide without the hash suffix
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		stream, err := f.srv.JS.Stream(ctx, testStream)
		require.NoError(t, err)
		var names []string
		for name := range stream.ConsumerNames(ctx).Name() {
			names = append(names, name)
		}
		require.Len(t, names, 2)
		for _, n := range names {
			assert.NotContains(t, n, ".")
			assert.NotContains(t, n, "*")
		}
	})
}

func TestSubscriber_delivers_metadata_and_raw_message(t *testing.T) {
	f := newSubFixture(t)
	ids := f.publish(testSubject, 1)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "meta"})
	ch := f.subscribe(sub, "ev.>")

	m := receive(t, ch)
	assert.Equal(t, ids[0], m.UUID)
	assert.Equal(t, testStream, m.Metadata.Get(jetstream.MetadataStream))
	assert.Equal(t, "meta", m.Metadata.Get(jetstream.MetadataConsumer))
	assert.Equal(t, "1", m.Metadata.Get(jetstream.MetadataStreamSeq))
	assert.Equal(t, "1", m.Metadata.Get(jetstream.MetadataConsumerSeq))
	assert.Equal(t, "1", m.Metadata.Get(jetstream.MetadataDeliveryAttempt))
	assert.Equal(t, testSubject, m.Metadata.Get(jetstream.MetadataSubject))
	assert.Equal(t, uint64(1), jetstream.DeliveryAttempt(m))
	assert.Equal(t, "user.created", m.Metadata.Get(marshaler.MetadataType))

	raw, ok := jetstream.RawMessage(m.Context())
	require.True(t, ok)
	assert.Equal(t, testSubject, raw.Subject())
	assert.Equal(t, ids[0], raw.Headers().Get(marshaler.HeaderMsgID))
	e, err := envelope.Decode(raw.Data(), envelope.DefaultMaxSize)
	require.NoError(t, err)
	assert.Equal(t, ids[0], e.ID)

	require.True(t, m.Ack())
	select {
	case <-m.Context().Done():
	case <-time.After(waitFor):
		t.Fatal("message context not canceled after Ack")
	}
	f.requireSettled("meta")

	_, ok = jetstream.RawMessage(context.Background())
	assert.False(t, ok)
	assert.Zero(t, jetstream.DeliveryAttempt(message.NewMessage("x", nil)))
}

func TestSubscriber_nack_redelivers_after_the_delay_policy(t *testing.T) {
	const initial = 150 * time.Millisecond
	tests := []struct {
		name string
		mark func(m *message.Message) // before Nack
		want []time.Duration          // minimum delay after the 1st and 2nd Nack
	}{
		{name: "NakDelay schedule", want: []time.Duration{initial, 2 * initial}},
		{
			name: "NakWithDelay mark overrides the schedule",
			mark: func(m *message.Message) { jetstream.NakWithDelay(m, 400*time.Millisecond) },
			want: []time.Duration{400 * time.Millisecond, 400 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubFixture(t)
			ids := f.publish(testSubject, 1)
			sub := f.subscriber(jetstream.SubscriberConfig{
				Durable:  "retry",
				NakDelay: jetstream.ExponentialNakDelay(initial, time.Second),
			})
			ch := f.subscribe(sub, testSubject)

			var nackedAt time.Time
			for attempt := 1; attempt <= 3; attempt++ {
				m := receive(t, ch)
				receivedAt := time.Now()
				require.Equal(t, ids[0], m.UUID)
				require.Equal(t, uint64(attempt), jetstream.DeliveryAttempt(m))
				require.Equal(t, strconv.Itoa(attempt), m.Metadata.Get(jetstream.MetadataDeliveryAttempt))
				if attempt > 1 {
					gap := receivedAt.Sub(nackedAt)
					assert.GreaterOrEqual(t, gap, tt.want[attempt-2], "redelivery %d came %s after the Nack", attempt, gap)
				}
				if attempt == 3 {
					require.True(t, m.Ack())
					break
				}
				if tt.mark != nil {
					tt.mark(m)
				}
				nackedAt = time.Now()
				require.True(t, m.Nack())
			}
			f.requireSettled("retry")
		})
	}
}

func TestSubscriber_terminate_mark_terms_without_redelivery(t *testing.T) {
	f := newSubFixture(t)
	terminated := f.advisories("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testStream + ".term")
	ids := f.publish(testSubject, 2)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "term", NakDelay: func(uint64) time.Duration { return 0 }})
	ch := f.subscribe(sub, testSubject)

	m := receive(t, ch)
	require.Equal(t, ids[0], m.UUID)
	jetstream.Terminate(m, "permanent: bad input")
	jetstream.NakWithDelay(m, 0) // Terminate wins over a delay mark
	require.True(t, m.Nack())

	select {
	case adv := <-terminated:
		assert.Equal(t, "permanent: bad input", adv["reason"])
		assert.EqualValues(t, 1, adv["stream_seq"])
	case <-time.After(waitFor):
		t.Fatal("no MSG_TERMINATED advisory")
	}
	// The next message is the second event, not a redelivery of the first
	// (NakDelay is 0, so a nak would have come back at once).
	m2 := receive(t, ch)
	assert.Equal(t, ids[1], m2.UUID)
	assert.Equal(t, uint64(1), jetstream.DeliveryAttempt(m2))
	require.True(t, m2.Ack())
	f.requireSettled("term")
	// Two deliveries in all: the terminated event never came back.
	assert.Equal(t, uint64(2), f.consumerInfo("term").Delivered.Consumer)
}

func TestSubscriber_in_progress_keeps_a_long_handler_from_redelivery(t *testing.T) {
	const ackWait = time.Second
	f := newSubFixture(t)
	ids := f.publish(testSubject, 1)
	// Concurrency 2: a redelivery would have a free slot to arrive through.
	// InProgress every 200ms (default AckWait/3) leaves room for a loaded
	// 2-core machine to be late with a few of them.
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable: "long", AckWait: ackWait, Concurrency: 2, InProgressInterval: 200 * time.Millisecond,
	})
	ch := f.subscribe(sub, testSubject)

	m := receive(t, ch)
	require.Equal(t, ids[0], m.UUID)
	require.Equal(t, uint64(1), jetstream.DeliveryAttempt(m))

	handlerDone := time.After(3 * ackWait) // the handler's own duration, not a wait for a condition
	select {
	case again := <-ch:
		t.Fatalf("redelivered during the handler: %s attempt %d", again.UUID, jetstream.DeliveryAttempt(again))
	case <-handlerDone:
	}
	require.True(t, m.Ack())
	f.requireSettled("long")
	info := f.consumerInfo("long")
	assert.Equal(t, uint64(1), info.Delivered.Consumer, "exactly one delivery")
}

func TestSubscriber_in_progress_keeps_each_long_handler_of_a_worker_from_redelivery(t *testing.T) {
	// Concurrency 1: one worker, whose keep-alive timer is re-armed for each
	// message; the second message must be kept alive like the first. Each
	// event is published only once the previous one is acked: a message
	// waiting for a slot is not kept alive (see FetchBatch), and it is not
	// what this test is about.
	const ackWait = time.Second
	f := newSubFixture(t)
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable: "long2", AckWait: ackWait, Concurrency: 1, InProgressInterval: 200 * time.Millisecond,
	})
	ch := f.subscribe(sub, testSubject)

	for i := range 2 {
		id := f.publish(testSubject, 1)[0]
		m := receive(t, ch)
		require.Equal(t, id, m.UUID, "message %d", i)
		require.Equal(t, uint64(1), jetstream.DeliveryAttempt(m), "message %d", i)
		<-time.After(2 * ackWait) // the handler's own duration, not a wait for a condition
		require.True(t, m.Ack())
		f.requireSettled("long2")
	}
	info := f.consumerInfo("long2")
	assert.Equal(t, uint64(2), info.Delivered.Consumer, "exactly one delivery of each")
	assert.Equal(t, 0, info.NumRedelivered)
}

func TestSubscriber_two_subscribers_on_one_durable_split_the_work(t *testing.T) {
	const n = 200
	f := newSubFixture(t)
	ids := f.publish(testSubject, n)

	type result struct {
		mu   sync.Mutex
		seen []string
	}
	var results [2]result
	// Each subscriber holds its first message until the other has one: then
	// neither can take everything, whatever the scheduling.
	var gotFirst [2]chan struct{}
	for i := range gotFirst {
		gotFirst[i] = make(chan struct{})
	}
	var chans [2]<-chan *message.Message
	for i := range chans {
		chans[i] = f.subscribe(f.subscriber(jetstream.SubscriberConfig{Durable: "shared"}), testSubject)
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	t.Cleanup(func() { stopAll(); wg.Wait() })
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				select {
				case m := <-ch:
					results[i].mu.Lock()
					results[i].seen = append(results[i].seen, m.UUID)
					results[i].mu.Unlock()
					if first {
						first = false
						close(gotFirst[i])
						select {
						case <-gotFirst[1-i]:
						case <-stop:
						}
					}
					m.Ack()
				case <-stop:
					return
				}
			}
		}()
	}
	total := func() int {
		n := 0
		for i := range results {
			results[i].mu.Lock()
			n += len(results[i].seen)
			results[i].mu.Unlock()
		}
		return n
	}
	require.Eventually(t, func() bool { return total() >= n }, waitFor, 10*time.Millisecond)
	f.requireSettled("shared")
	stopAll()
	wg.Wait()

	count := map[string]int{}
	for i := range results {
		assert.NotEmpty(t, results[i].seen, "subscriber %d got nothing", i)
		for _, id := range results[i].seen {
			count[id]++
		}
	}
	assert.Len(t, count, n)
	for _, id := range ids {
		assert.Equal(t, 1, count[id], "event %s handled %d times", id, count[id])
	}
}

func TestSubscriber_close_with_in_flight_work_loses_nothing(t *testing.T) {
	const n, inFlight = 20, 5
	f := newSubFixture(t)
	ids := f.publish(testSubject, n)
	nc := f.srv.Connect(t)
	first, err := jetstream.NewSubscriber(nc, jetstream.SubscriberConfig{
		Stream: testStream, Durable: "closing", Concurrency: inFlight, CloseTimeout: 300 * time.Millisecond,
	})
	require.NoError(t, err)
	ch := f.subscribe(first, testSubject)

	acked := map[string]bool{}
	held := make([]*message.Message, 0, inFlight)
	for range inFlight {
		held = append(held, receive(t, ch))
	}
	// One is settled in time, the others are still in the handlers at Close.
	require.True(t, held[0].Ack())
	acked[held[0].UUID] = true

	err = first.Close()
	require.ErrorIs(t, err, jetstream.ErrCloseTimeout)
	require.ErrorIs(t, err, jetstream.ErrTimeout)
	for _, m := range held[1:] {
		select {
		case <-m.Context().Done():
		default:
			t.Fatalf("message %s context still live after Close", m.UUID)
		}
	}
	requireClosed(t, ch)
	assert.False(t, nc.IsClosed(), "Close closed the caller's connection")
	assert.Equal(t, nats.CONNECTED, nc.Status())
	// A late Ack of an abandoned message changes nothing: it was nacked.
	held[1].Ack()

	second := f.subscriber(jetstream.SubscriberConfig{Durable: "closing", Concurrency: inFlight})
	ch2 := f.subscribe(second, testSubject)
	for len(acked) < n {
		m := receive(t, ch2)
		acked[m.UUID] = true
		require.True(t, m.Ack())
	}
	for _, id := range ids {
		assert.True(t, acked[id], "event %s lost", id)
	}
	f.requireSettled("closing")
}

func TestSubscriber_close_waits_for_handlers_that_finish_in_time(t *testing.T) {
	f := newSubFixture(t)
	ids := f.publish(testSubject, 3)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "graceful", Concurrency: 3, CloseTimeout: waitFor})
	ch := f.subscribe(sub, testSubject)
	held := []*message.Message{receive(t, ch), receive(t, ch), receive(t, ch)}

	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	requireClosed(t, ch) // Close is under way...
	for _, m := range held {
		require.NoError(t, m.Context().Err()) // ...the handlers keep their ctx...
		require.True(t, m.Ack())              // ...and their acks count.
	}
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(2 * waitFor):
		t.Fatal("Close did not return")
	}
	f.requireSettled("graceful")
	info := f.consumerInfo("graceful")
	assert.Equal(t, uint64(len(ids)), info.Delivered.Consumer, "each delivered once")
	assert.Equal(t, uint64(len(ids)), info.AckFloor.Stream)
}

func TestSubscriber_canceling_the_subscribe_context_closes_the_channel(t *testing.T) {
	f := newSubFixture(t)
	ids := f.publish(testSubject, 2)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "ctx"})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, testSubject)
	require.NoError(t, err)
	m := receive(t, ch)
	require.Equal(t, ids[0], m.UUID)
	cancel()
	requireClosed(t, ch)
	require.NoError(t, m.Context().Err(), "in flight: its ctx outlives the Subscribe ctx")
	require.True(t, m.Ack()) // and it is still settled

	// The second event was pulled ahead (FetchBatch 2) and handed back with a
	// nak: a new subscription gets it now, not after AckWait.
	ch2 := f.subscribe(sub, testSubject)
	m2 := receive(t, ch2)
	assert.Equal(t, ids[1], m2.UUID)
	require.True(t, m2.Ack())
	f.requireSettled("ctx")
}

func TestSubscriber_subscribe_after_close_fails(t *testing.T) {
	f := newSubFixture(t)
	nc := f.srv.Connect(t)
	sub, err := jetstream.NewSubscriber(nc, jetstream.SubscriberConfig{Stream: testStream})
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	require.NoError(t, sub.Close(), "Close is idempotent")

	_, err = sub.Subscribe(context.Background(), testSubject)
	require.ErrorIs(t, err, jetstream.ErrSubscriberClosed)
	require.ErrorIs(t, err, jetstream.ErrClosed)
	err = sub.SubscribeInitialize(testSubject)
	require.ErrorIs(t, err, jetstream.ErrClosed)
	assert.False(t, nc.IsClosed())
}

func TestSubscriber_subscribe_to_a_missing_stream_fails_with_ErrNoStream(t *testing.T) {
	f := newSubFixture(t)
	sub := f.subscriber(jetstream.SubscriberConfig{Stream: "NOPE"})
	_, err := sub.Subscribe(context.Background(), "nope.x")
	require.ErrorIs(t, err, jetstream.ErrNoStream)
	require.ErrorIs(t, err, jetstream.ErrSubscribe)
	require.ErrorIs(t, err, natsjs.ErrStreamNotFound)
}

func TestSubscriber_concurrency_bounds_messages_in_flight(t *testing.T) {
	const concurrency = 3
	f := newSubFixture(t)
	f.publish(testSubject, concurrency+2)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "bounded", Concurrency: concurrency})
	ch := f.subscribe(sub, testSubject)

	held := make([]*message.Message, 0, concurrency)
	for range concurrency {
		held = append(held, receive(t, ch))
	}
	// Nothing more while all slots are taken. (A wrong implementation can
	// only pass this by being slow; it cannot fail a right one.)
	select {
	case m := <-ch:
		t.Fatalf("message %s sent beyond Concurrency %d", m.UUID, concurrency)
	case <-time.After(200 * time.Millisecond):
	}
	require.True(t, held[0].Ack())
	next := receive(t, ch) // a slot is free again
	require.True(t, next.Ack())
	for _, m := range held[1:] {
		require.True(t, m.Ack())
	}
	require.True(t, receive(t, ch).Ack())
	f.requireSettled("bounded")
}

func TestSubscriber_ack_sync_waits_for_the_server(t *testing.T) {
	f := newSubFixture(t)
	f.publish(testSubject, 3)
	sub := f.subscriber(jetstream.SubscriberConfig{Durable: "sync", AckSync: true})
	ch := f.subscribe(sub, testSubject)
	for range 3 {
		require.True(t, receive(t, ch).Ack())
	}
	f.requireSettled("sync")
	assert.Equal(t, uint64(3), f.consumerInfo("sync").Delivered.Consumer, "each delivered once")
}

// undecodableMsg is a message our unmarshaler refuses: not an envelope, no
// CloudEvents headers.
func undecodableMsg(subject string) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: []byte("not json at all")}
}

func TestSubscriber_undecodable_message_goes_to_the_hook_then_term(t *testing.T) {
	f := newSubFixture(t)
	terminated := f.advisories("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testStream + ".undec")
	f.publishRaw(undecodableMsg(testSubject))
	ids := f.publish(testSubject, 1)

	type call struct {
		data   string
		err    error
		hasRaw bool
	}
	calls := make(chan call, 4)
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable: "undec",
		OnUndecodable: func(ctx context.Context, msg natsjs.Msg, err error) error {
			_, ok := jetstream.RawMessage(ctx)
			calls <- call{data: string(msg.Data()), err: err, hasRaw: ok}
			return nil
		},
	})
	ch := f.subscribe(sub, testSubject)

	select {
	case c := <-calls:
		assert.Equal(t, "not json at all", c.data)
		assert.ErrorIs(t, c.err, jetstream.ErrUndecodable)
		assert.ErrorIs(t, c.err, marshaler.ErrUnmarshal)
		assert.True(t, c.hasRaw)
	case <-time.After(waitFor):
		t.Fatal("hook not called")
	}
	select {
	case adv := <-terminated:
		assert.EqualValues(t, 1, adv["stream_seq"])
		assert.Contains(t, adv["reason"], "undecodable")
	case <-time.After(waitFor):
		t.Fatal("undecodable message not terminated")
	}
	// The subscriber goes on with the next event.
	m := receive(t, ch)
	assert.Equal(t, ids[0], m.UUID)
	require.True(t, m.Ack())
	f.requireSettled("undec")
	assert.Len(t, calls, 0, "hook called again: the message was redelivered")
}

func TestSubscriber_undecodable_message_is_nacked_when_the_hook_fails(t *testing.T) {
	f := newSubFixture(t)
	f.publishRaw(undecodableMsg(testSubject))

	attempts := make(chan uint64, 4)
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable:  "hookfail",
		NakDelay: func(uint64) time.Duration { return 50 * time.Millisecond },
		OnUndecodable: func(_ context.Context, msg natsjs.Msg, err error) error {
			md, mdErr := msg.Metadata()
			if !assert.NoError(t, mdErr) {
				return mdErr
			}
			attempts <- md.NumDelivered
			if md.NumDelivered == 1 {
				return errors.New("dead-letter stream unavailable")
			}
			return nil
		},
	})
	f.subscribe(sub, testSubject)

	for want := uint64(1); want <= 2; want++ {
		select {
		case got := <-attempts:
			assert.Equal(t, want, got)
		case <-time.After(waitFor):
			t.Fatalf("hook not called for attempt %d", want)
		}
	}
	f.requireSettled("hookfail")
	assert.Len(t, attempts, 0)
}

func TestSubscriber_undecodable_message_without_hook_is_nacked_until_max_deliver(t *testing.T) {
	f := newSubFixture(t)
	maxed := f.advisories("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + testStream + ".nohook")
	f.publishRaw(undecodableMsg(testSubject))
	ids := f.publish(testSubject, 1)
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable: "nohook", MaxDeliver: 2,
		NakDelay: func(uint64) time.Duration { return 20 * time.Millisecond },
	})
	ch := f.subscribe(sub, testSubject)

	m := receive(t, ch)
	assert.Equal(t, ids[0], m.UUID)
	require.True(t, m.Ack())
	select {
	case adv := <-maxed:
		assert.EqualValues(t, 1, adv["stream_seq"])
		assert.EqualValues(t, 2, adv["deliveries"])
	case <-time.After(waitFor):
		t.Fatal("no MAX_DELIVERIES advisory for the undecodable message")
	}
}

func TestSubscriber_repeated_header_does_not_panic(t *testing.T) {
	f := newSubFixture(t)
	e := envelope.NewEvent("user.created", "test", "", time.Now(), nil)
	bad, err := marshaler.Default().EventToNATS(testSubject, e, marshaler.Relations{})
	require.NoError(t, err)
	bad.Header[marshaler.HeaderType] = []string{"user.created", "user.deleted"}
	bad.Header.Del(marshaler.HeaderMsgID)
	f.publishRaw(bad)

	same := envelope.NewEvent("user.created", "test", "", time.Now(), nil)
	dup, err := marshaler.Default().EventToNATS(testSubject, same, marshaler.Relations{})
	require.NoError(t, err)
	dup.Header[marshaler.HeaderType] = []string{"user.created", "user.created"}
	f.publishRaw(dup)

	errs := make(chan error, 2)
	sub := f.subscriber(jetstream.SubscriberConfig{
		Durable: "hdr",
		OnUndecodable: func(_ context.Context, _ natsjs.Msg, err error) error {
			errs <- err
			return nil
		},
	})
	ch := f.subscribe(sub, testSubject)
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, marshaler.ErrRepeatedHeader)
	case <-time.After(waitFor):
		t.Fatal("repeated differing header not reported")
	}
	m := receive(t, ch) // a repeated identical header decodes
	assert.Equal(t, same.ID, m.UUID)
	require.True(t, m.Ack())
	f.requireSettled("hdr")
}

func TestSubscriber_survives_a_server_restart(t *testing.T) {
	f := newSubFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := f.srv.JS.CreateStream(ctx, natsjs.StreamConfig{
		Name: "DURABLE", Subjects: []string{"dur.>"}, Storage: natsjs.FileStorage,
	})
	require.NoError(t, err)
	sub := f.subscriber(jetstream.SubscriberConfig{Stream: "DURABLE", Durable: "restart"})
	ch := f.subscribe(sub, "dur.x")

	before := f.publish("dur.x", 1)
	m := receive(t, ch)
	require.Equal(t, before[0], m.UUID)
	require.True(t, m.Ack())

	require.NoError(t, f.srv.Restart())
	// The test's own connection reconnects too; publish once it has.
	require.Eventually(t, func() bool { return f.srv.Conn.IsConnected() }, waitFor, 10*time.Millisecond)
	var after []string
	require.Eventually(t, func() bool {
		e := envelope.NewEvent("user.created", "test", "", time.Now(), nil)
		nm, err := marshaler.Default().EventToNATS("dur.x", e, marshaler.Relations{})
		require.NoError(t, err)
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		defer pcancel()
		if _, err := f.srv.JS.PublishMsg(pctx, nm); err != nil {
			return false
		}
		after = append(after, e.ID)
		return true
	}, waitFor, 50*time.Millisecond)

	m = receive(t, ch)
	require.Equal(t, after[0], m.UUID)
	require.True(t, m.Ack())
}
