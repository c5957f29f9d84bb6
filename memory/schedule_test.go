package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// schedBus is a bus on a manual clock whose AUTH_EVENTS stream allows
// schedules, TTL and atomic batches.
func schedBus(t *testing.T) (*memory.Bus, *memory.Publisher, clockAdvancer) {
	t.Helper()
	b, clock := manualBus(t,
		memory.StreamConfig{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}, AllowMsgSchedules: true, AllowMsgTTL: true, AllowAtomicPublish: true},
		memory.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}},
		memory.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}},
	)
	p, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)
	return b, p, clock
}

type clockAdvancer interface {
	Now() time.Time
	Advance(time.Duration) time.Time
}

func reminder() *envelope.Event {
	return envelope.NewEvent("user.reminded", "auth-service", "org-123", t0, map[string]any{"user_id": 42})
}

// The service test the issue asks for: a reminder published for 24 hours
// later reaches the handler after 24 hours of the manual clock, with its
// id, through the real router; the test takes milliseconds.
func TestBus_reminder_sent_after_24h_on_the_manual_clock(t *testing.T) {
	b, p, clock := schedBus(t)
	r, err := router.NewWithTransport(b, router.Config{Stream: "AUTH_EVENTS", Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	got := make(chan *envelope.Event, 10)
	r.Group("reminders", "auth.user.reminded").On("user.reminded", func(_ context.Context, e *envelope.Event) error {
		got <- e
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-r.Running()

	e := reminder()
	require.NoError(t, p.Publish(ctx, "auth.user.reminded", e, events.After(24*time.Hour)))
	clock.Advance(24*time.Hour - time.Second)
	b.Tick()
	require.Len(t, b.Messages("auth.user.reminded"), 0, "not before 24 hours")
	clock.Advance(time.Second)
	b.Tick()
	select {
	case h := <-got:
		assert.Equal(t, e.ID, h.ID, "the event keeps its id")
		assert.Equal(t, e.Type, h.Type)
	case <-time.After(10 * time.Second):
		t.Fatal("the reminder did not reach the handler")
	}
	assert.Empty(t, b.Messages(transport.ScheduleSubject("auth.user.reminded", e.ID)), "a one-shot schedule is removed as it fires")
}

// The same proof as the reliability suite's on JetStream, on the manual
// clock: 10,000 events scheduled 1-30 s ahead, a tenth of them cancelled;
// none fires before its time, each of the others fires exactly once, no
// cancelled one ever fires.
func TestBus_10000_schedules_fire_once_each_never_early_and_cancelled_never(t *testing.T) {
	b, p, clock := schedBus(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	start := clock.Now()
	due := map[string]time.Time{}
	cancelled := map[string]bool{}
	for i := range 10_000 {
		e := reminder()
		at := start.Add(time.Second + time.Duration(rng.Int64N(int64(29*time.Second))))
		require.NoError(t, p.PublishAsync(ctx, "auth.user.reminded", e, events.At(at)))
		due[e.ID] = at
		if i%10 == 0 {
			cancelled[e.ID] = true
		}
	}
	for id := range cancelled {
		require.NoError(t, p.CancelSchedule(ctx, "auth.user.reminded", id))
	}
	var mu sync.Mutex
	var got []*transport.Delivery
	c, err := b.Consume(ctx, transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "reminders", FilterSubjects: []string{"auth.user.reminded"}, MaxAckPending: -1, AckWait: time.Hour},
		func(d *transport.Delivery) { mu.Lock(); got = append(got, d); mu.Unlock() })
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	c.Credit(20_000)
	for step := time.Duration(0); step <= 31*time.Second; step += 100 * time.Millisecond {
		clock.Advance(100 * time.Millisecond)
		b.Tick()
	}
	require.Eventually(t, func() bool { return memory.Idle(c) }, 10*time.Second, time.Millisecond)
	fired := map[string]int{}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range got {
		id := d.Header[marshaler.HeaderID][0]
		require.False(t, d.Published.Before(due[id]), "event %s stored at %s, due %s", id, d.Published, due[id])
		require.Less(t, d.Published.Sub(due[id]), 100*time.Millisecond, "event %s fired on the first tick after its time", id)
		fired[id]++
	}
	for id := range due {
		switch {
		case cancelled[id]:
			assert.Zero(t, fired[id], "cancelled %s fired", id)
		default:
			assert.Equal(t, 1, fired[id], "event %s", id)
		}
	}
	assert.Len(t, fired, 9_000)
	assert.Empty(t, b.Messages("_schedule.>"), "no schedule left")
}

func TestBus_recurring_schedule_on_the_manual_clock(t *testing.T) {
	b, p, clock := schedBus(t)
	ctx := context.Background()
	e := envelope.NewEvent("report.due", "reports", "org-1", t0, nil)
	// 09:00 in Paris is 08:00 UTC in January; t0 is 10:30:45 UTC.
	require.NoError(t, p.Publish(ctx, "auth.report.due", e, events.Cron("0 0 9 * * *"), events.InTimeZone("Europe/Paris"), events.TTL(48*time.Hour)))
	var at, next []string
	ids := map[string]bool{}
	for range 3 * 24 * 4 {
		clock.Advance(15 * time.Minute)
		b.Tick()
	}
	for _, m := range b.Messages("auth.report.due") {
		at = append(at, m.Published.Format(time.RFC3339))
		next = append(next, m.Header.Get(transport.HeaderScheduleNext))
		_, got, err := marshaler.Default().DecodeNATS(m.Header, m.Data)
		require.NoError(t, err)
		ids[got.ID] = true
		assert.Equal(t, "_schedule.auth.report.due."+e.ID, m.Header.Get(transport.HeaderScheduler))
	}
	// Fired on the first tick at 08:00 UTC each day (ticks every 15
	// minutes from 10:30:45). After three days the TTL (48h) removed the
	// 16th's: the 17th's and 18th's remain.
	assert.Equal(t, []string{"2024-01-17T08:00:45Z", "2024-01-18T08:00:45Z"}, at)
	assert.Equal(t, []string{"2024-01-18T09:00:00+01:00", "2024-01-19T09:00:00+01:00"}, next, "as the server writes it: in the schedule's zone")
	assert.Len(t, ids, 2, "each occurrence has an id of its own")

	require.NoError(t, p.CancelSchedule(ctx, "auth.report.due", e.ID))
	clock.Advance(72 * time.Hour)
	b.Tick()
	assert.Empty(t, b.Messages("auth.report.due"), "no occurrence after the cancel (and the TTL removed the others)")
	assert.ErrorIs(t, p.CancelSchedule(ctx, "auth.report.due", e.ID), events.ErrScheduleNotFound)
}

func TestBus_recurring_schedule_after_a_clock_jump_fires_once(t *testing.T) {
	b, p, clock := schedBus(t)
	require.NoError(t, p.Publish(context.Background(), "auth.tick", reminder(), events.Every(time.Minute)))
	clock.Advance(time.Hour)
	b.Tick()
	assert.Len(t, b.Messages("auth.tick"), 1, "missed times fire once, as the server does after being down")
	clock.Advance(time.Minute)
	b.Tick()
	assert.Len(t, b.Messages("auth.tick"), 2)
}

func TestBus_ttl_event_is_gone_after_it_and_a_consumer_never_sees_it(t *testing.T) {
	b, p, clock := schedBus(t)
	ctx := context.Background()
	short, kept := reminder(), reminder()
	held := reminder()
	// A durable that is bound and holds one TTL'd event unacked, and one
	// created only after the TTL passed.
	c, s := consume(t, b, transport.ConsumerSpec{Durable: "early", FilterSubjects: []string{"auth.held"}})
	c.Credit(1)
	require.NoError(t, p.Publish(ctx, "auth.held", held, events.TTL(2*time.Second)))
	d := s.next(t)
	assert.Equal(t, held.ID, d.Header[marshaler.HeaderID][0])

	require.NoError(t, p.Publish(ctx, "auth.user.seen", short, events.TTL(2*time.Second)))
	require.NoError(t, p.Publish(ctx, "auth.user.seen", kept))
	clock.Advance(time.Second)
	b.Tick()
	assert.Len(t, b.Messages("auth.user.seen"), 2, "not before its TTL")
	clock.Advance(time.Second)
	b.Tick()
	msgs := b.Messages("auth.user.seen")
	require.Len(t, msgs, 1, "gone after its TTL")
	assert.Equal(t, kept.ID, msgs[0].Header.Get(marshaler.HeaderID))
	info, err := b.Stream("AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.Msgs)
	assert.Equal(t, uint64(3), info.LastSeq)

	late, ls := consume(t, b, transport.ConsumerSpec{Durable: "late", FilterSubjects: []string{"auth.user.>"}})
	late.Credit(10)
	got := ls.next(t)
	assert.Equal(t, kept.ID, got.Header[marshaler.HeaderID][0])
	ls.none(t, late)
	st, err := late.State(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Pending)

	est, err := c.State(ctx)
	require.NoError(t, err)
	assert.Zero(t, est.AckPending, "the holder forgets the removed event")
	require.NoError(t, d.Settler.Ack(ctx, false))
}

func TestBus_refusals_name_the_stream_and_the_fix(t *testing.T) {
	b, p, _ := schedBus(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		publish  func() error
		sentinel error
		setting  string
	}{
		{"schedule", func() error { return p.Publish(ctx, "plain.x", reminder(), events.After(time.Hour)) }, events.ErrSchedulesDisabled, "AllowMsgSchedules"},
		{"ttl", func() error { return p.Publish(ctx, "plain.x", reminder(), events.TTL(time.Hour)) }, events.ErrTTLDisabled, "AllowMsgTTL"},
		{"atomic", func() error {
			_, err := p.PublishAtomic(ctx, []memory.AtomicEvent{{Subject: "plain.x", Event: reminder()}})
			return err
		}, events.ErrAtomicDisabled, "AllowAtomicPublish"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.publish()
			assert.ErrorIs(t, err, tt.sentinel)
			assert.ErrorIs(t, err, events.ErrPublish)
			assert.Contains(t, err.Error(), "stream PLAIN")
			assert.Contains(t, err.Error(), tt.setting)
		})
	}
	assert.ErrorIs(t, p.Publish(ctx, "auth.x", reminder(), events.Cron("61 * * * * *")), events.ErrInvalidOption)
	assert.Empty(t, b.Messages(">"))
}

func TestBus_unsupported_headers_are_refused(t *testing.T) {
	b, _, _ := schedBus(t)
	for _, h := range []string{"Nats-Schedule-Source", "Nats-Rollup", "Nats-Expected-Last-Msg-Id", "Nats-Batch-Id"} {
		_, err := b.Publish(context.Background(), "auth.x", map[string][]string{h: {"x"}}, nil)
		assert.ErrorIs(t, err, events.ErrUnsupported, h)
	}
	assert.Empty(t, b.Messages(">"))
}

func TestBus_schedule_fires_by_itself_on_the_system_clock(t *testing.T) {
	b, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}, AllowMsgSchedules: true}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	p, err := memory.NewPublisher(b, memory.PublisherConfig{})
	require.NoError(t, err)
	e := reminder()
	at := time.Now().Add(50 * time.Millisecond)
	require.NoError(t, p.Publish(context.Background(), "auth.user.reminded", e, events.At(at)))
	require.Eventually(t, func() bool { return len(b.Messages("auth.user.reminded")) == 1 }, 10*time.Second, time.Millisecond)
	m := b.Messages("auth.user.reminded")[0]
	assert.False(t, m.Published.Before(at), "stored at %s, due %s", m.Published, at)
}

func TestBus_atomic_batch(t *testing.T) {
	b, p, _ := schedBus(t)
	ctx := context.Background()
	batch := func(n int) []memory.AtomicEvent {
		out := make([]memory.AtomicEvent, n)
		for i := range out {
			out[i] = memory.AtomicEvent{Subject: fmt.Sprintf("auth.order.o1.step%d", i), Event: reminder()}
		}
		return out
	}
	ack, err := p.PublishAtomic(ctx, batch(5), events.ExpectLastSequence("auth.order.o1.>", 0))
	require.NoError(t, err)
	assert.Equal(t, memory.AtomicAck{Stream: "AUTH_EVENTS", FirstSequence: 1, LastSequence: 5, Count: 5, BatchID: ack.BatchID}, ack)
	msgs := b.Messages("auth.order.>")
	require.Len(t, msgs, 5)
	for i, m := range msgs {
		assert.Equal(t, uint64(i+1), m.Sequence)
		assert.Equal(t, fmt.Sprint(i+1), m.Header.Get(transport.HeaderBatchSeq))
	}
	assert.Equal(t, "1", msgs[4].Header.Get(transport.HeaderBatchCommit))

	// Two writers with the same expected sequence: one wins, the other
	// learns the winner's last sequence.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	acks := make([]memory.AtomicAck, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks[i], errs[i] = p.PublishAtomic(ctx, batch(3), events.ExpectLastSequence("auth.order.o1.>", 5))
		}()
	}
	wg.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i] == nil })
	winner := acks[0]
	if winner.Count == 0 {
		winner = acks[1]
	}
	require.NoError(t, errs[0])
	var ce *events.ConflictError
	require.ErrorAs(t, errs[1], &ce)
	assert.Equal(t, uint64(5), ce.Expected)
	assert.Equal(t, winner.LastSequence, ce.Current)
	assert.Len(t, b.Messages("auth.order.>"), 8)

	_, err = p.PublishAtomic(ctx, []memory.AtomicEvent{{Subject: "auth.a", Event: reminder()}, {Subject: "dlq.a", Event: reminder()}})
	assert.ErrorIs(t, err, events.ErrBatchAbandoned, "one batch, one stream")
	again := batch(2)
	_, err = p.PublishAtomic(ctx, again)
	require.NoError(t, err)
	_, err = p.PublishAtomic(ctx, again)
	assert.ErrorIs(t, err, events.ErrBatchDuplicate)
	_, err = p.PublishAtomic(ctx, make([]memory.AtomicEvent, transport.MaxAtomicBatch+1))
	assert.ErrorIs(t, err, events.ErrBatchTooLarge)
	_, err = p.PublishAtomic(ctx, batch(2), events.After(time.Hour))
	assert.ErrorIs(t, err, events.ErrInvalidOption)
	assert.Len(t, b.Messages("auth.order.>"), 10)
	assert.Empty(t, b.Messages("dlq.>"))
}

// The bus stores what JetStream stores: the event a schedule fires, and
// the events of an atomic batch, header for header.
func TestBus_stores_what_jetstream_stores_for_schedules_and_atomic_batches(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.StreamSpec{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}, AllowMsgSchedules: true, AllowMsgTTL: true, AllowAtomicPublish: true})
	require.NoError(t, err)
	jp, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = jp.Close() })
	b, mp, clock := schedBus(t)

	// Due an hour ago, on each one's clock: fired at once.
	e := reminder()
	pctx := envelope.WithRelations(ctx, "corr-1", "cause-1")
	require.NoError(t, jp.Publish(pctx, "auth.user.reminded", e, events.At(time.Now().Add(-time.Hour)), events.TTL(time.Hour)))
	require.NoError(t, mp.Publish(pctx, "auth.user.reminded", e, events.At(clock.Now().Add(-time.Hour)), events.TTL(time.Hour)))
	b.Tick()
	st, err := srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	var onServer *natsjs.RawStreamMsg
	require.Eventually(t, func() bool {
		onServer, err = st.GetLastMsgForSubject(ctx, "auth.user.reminded")
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	inBus := b.Messages("auth.user.reminded")
	require.Len(t, inBus, 1)
	assert.Equal(t, nats.Header(onServer.Header), inBus[0].Header)
	assert.Equal(t, onServer.Data, inBus[0].Data)

	// A pending schedule is stored as the server stores it.
	later := reminder()
	sack, err := jp.PublishAck(pctx, "auth.user.reminded", later, events.After(time.Hour))
	require.NoError(t, err)
	require.NoError(t, mp.Publish(pctx, "auth.user.reminded", later, events.After(time.Hour)))
	sm, err := st.GetMsg(ctx, sack.Sequence)
	require.NoError(t, err)
	inBus = b.Messages(transport.ScheduleSubject("auth.user.reminded", later.ID))
	require.Len(t, inBus, 1)
	sh, bh := nats.Header(sm.Header), inBus[0].Header
	// The @at time and the message id that holds it are each clock's.
	for _, k := range []string{transport.HeaderSchedule, nats.MsgIdHdr} {
		assert.NotEmpty(t, sh.Get(k))
		sh.Del(k)
		bh.Del(k)
	}
	assert.Equal(t, sh, bh)

	a1, a2 := reminder(), reminder()
	batch := []transport.AtomicEvent{{Subject: "auth.order.a", Event: a1}, {Subject: "auth.order.b", Event: a2}}
	jack, err := jp.PublishAtomic(ctx, batch, events.ExpectLastSequence("auth.order.>", 0))
	require.NoError(t, err)
	_, err = mp.PublishAtomic(ctx, batch, events.ExpectLastSequence("auth.order.>", 0))
	require.NoError(t, err)
	inBus = b.Messages("auth.order.>")
	require.Len(t, inBus, 2)
	for i := range 2 {
		m, err := st.GetMsg(ctx, jack.FirstSequence+uint64(i))
		require.NoError(t, err)
		h := nats.Header(m.Header)
		bh := inBus[i].Header
		// The batch id is each publisher's own.
		assert.NotEmpty(t, h.Get(transport.HeaderBatchID))
		h.Del(transport.HeaderBatchID)
		bh.Del(transport.HeaderBatchID)
		assert.Equal(t, h, bh, "event %d", i)
		assert.Equal(t, m.Data, inBus[i].Data)
	}
}

func TestBus_expected_last_sequence_on_a_single_publish(t *testing.T) {
	b, p, _ := schedBus(t)
	ctx := context.Background()
	ack, err := p.PublishAck(ctx, "auth.order.o1.created", reminder(), events.ExpectLastSequence("auth.order.o1.>", 0))
	require.NoError(t, err)
	err = p.Publish(ctx, "auth.order.o1.paid", reminder(), events.ExpectLastSequence("auth.order.o1.>", 0))
	var ce *events.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, events.ErrPublish)
	assert.Equal(t, ack.Sequence, ce.Current)
	assert.Equal(t, "auth.order.o1.>", ce.Subject)

	// The stream-wide expectation (Nats-Expected-Last-Sequence), raw.
	_, err = b.Publish(ctx, "auth.x", map[string][]string{"Nats-Expected-Last-Sequence": {"5"}}, nil)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, uint64(1), ce.Current)
	_, err = b.Publish(ctx, "auth.x", map[string][]string{"Nats-Expected-Last-Sequence": {"1"}}, nil)
	require.NoError(t, err)
	assert.Len(t, b.Messages("auth.>"), 2)
}
