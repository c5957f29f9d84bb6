package memory_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

func TestBus_publish_lands_in_the_stream_whose_subjects_match(t *testing.T) {
	b, _ := manualBus(t,
		memory.StreamConfig{Name: "AUTH", Subjects: []string{"auth.user.*"}},
		memory.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}},
	)
	tests := []struct {
		subject string
		stream  string
		err     error
	}{
		{"auth.user.created", "AUTH", nil},
		{"auth.user.role.updated", "", transport.ErrNoStream}, // '*' is one token
		{"orders.eu.placed", "ORDERS", nil},
		{"orders", "", transport.ErrNoStream}, // '>' is one token or more
		{"billing.paid", "", transport.ErrNoStream},
		{"auth.user.*", "", envelope.ErrInvalidSubject},
		{"auth..x", "", envelope.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			ack, err := b.Publish(context.Background(), tt.subject, nil, []byte("x"))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.stream, ack.Stream)
		})
	}
	assert.Len(t, b.Messages(">"), 2)
	assert.Len(t, b.Messages("orders.*.placed"), 1)
}

func TestBus_streams_with_overlapping_subjects_are_refused(t *testing.T) {
	b, _ := manualBus(t, memory.StreamConfig{Name: "AUTH", Subjects: []string{"auth.>"}})
	err := b.AddStream(memory.StreamConfig{Name: "USERS", Subjects: []string{"auth.user.*"}})
	assert.ErrorIs(t, err, transport.ErrSubjectsOverlap)
	assert.ErrorIs(t, b.AddStream(memory.StreamConfig{Name: "bad.name", Subjects: []string{"x"}}), envelope.ErrInvalidConfig)
	assert.NoError(t, b.AddStream(memory.StreamConfig{Name: "AUTH", Subjects: []string{"auth.>", "login.*"}}), "updating a stream's own subjects")
}

func TestBus_same_msg_id_is_stored_once_within_the_duplicates_window(t *testing.T) {
	b, clock := manualBus(t, memory.StreamConfig{Name: "AUTH", Subjects: []string{"auth.>"}, Duplicates: time.Minute})
	first := publish(t, b, "auth.user.created", "id-1")
	again := publish(t, b, "auth.user.created", "id-1")
	assert.Equal(t, memory.PubAck{Stream: "AUTH", Sequence: 1}, first)
	assert.Equal(t, memory.PubAck{Stream: "AUTH", Sequence: 1, Duplicate: true}, again)
	clock.Advance(time.Minute)
	assert.Equal(t, memory.PubAck{Stream: "AUTH", Sequence: 2}, publish(t, b, "auth.user.created", "id-1"), "outside the window it is stored again")
	assert.Equal(t, uint64(3), publish(t, b, "auth.user.created", "").Sequence, "no id: no de-duplication")
}

func TestBus_message_larger_than_max_payload_counting_headers_is_refused(t *testing.T) {
	b, err := memory.NewBus(memory.Config{MaxPayload: 100, Streams: []memory.StreamConfig{{Name: "S", Subjects: []string{"s"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	_, err = b.Publish(context.Background(), "s", nil, make([]byte, 100))
	require.NoError(t, err, "exactly max payload")
	_, err = b.Publish(context.Background(), "s", nats.Header{"K": {"v"}}, make([]byte, 90))
	assert.ErrorIs(t, err, envelope.ErrTooLarge)
	assert.ErrorIs(t, err, transport.ErrPublish)
	assert.Equal(t, 100, b.MaxPayload())
}

func TestBus_consumer_never_delivers_more_than_its_credit(t *testing.T) {
	b, _ := manualBus(t)
	for range 5 {
		publish(t, b, "auth.user.created", "")
	}
	c, s := consume(t, b, transport.ConsumerSpec{Durable: "users", AckWait: time.Minute})
	s.none(t, c)
	c.Credit(2)
	assert.Equal(t, uint64(1), s.next(t).StreamSeq)
	assert.Equal(t, uint64(2), s.next(t).StreamSeq)
	s.none(t, c)
	c.Credit(1)
	d := s.next(t)
	assert.Equal(t, uint64(3), d.StreamSeq)
	assert.Equal(t, uint64(2), d.Pending, "two messages still to deliver after it")
	assert.Equal(t, uint64(3), d.ConsumerSeq)
	assert.Equal(t, "users", d.Consumer)
	assert.Equal(t, "AUTH_EVENTS", d.Stream)
	assert.Equal(t, t0, d.Published)
	s.none(t, c)
}

// TestBus_settlements_follow_JetStream is the table of what each verdict
// does to a delivered message, on a manual clock (AckWait 30s).
func TestBus_settlements_follow_JetStream(t *testing.T) {
	const ackWait = 30 * time.Second
	tests := []struct {
		name string
		// settle acts on the first delivery, and may move the clock.
		settle func(t *testing.T, b *memory.Bus, clock interface{ Advance(time.Duration) time.Time }, d *transport.Delivery)
		// redelivered: a second delivery (attempt 2) comes.
		redelivered bool
	}{
		{"ack: settled for good", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
			require.NoError(t, d.Settler.Ack(context.Background(), true))
			c.Advance(time.Hour)
			b.Tick()
		}, false},
		{"nak without delay: at once", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
			require.NoError(t, d.Settler.Nak(0))
		}, true},
		{"nak with delay: once the delay passed", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
			require.NoError(t, d.Settler.Nak(5*time.Second))
		}, true},
		{"release: at once, not counted", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
			require.NoError(t, d.Settler.Release(0))
		}, true},
		{"no verdict: after AckWait", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
		}, true},
		{"in progress: AckWait restarts", func(t *testing.T, b *memory.Bus, c interface{ Advance(time.Duration) time.Time }, d *transport.Delivery) {
			c.Advance(20 * time.Second)
			require.NoError(t, d.Settler.InProgress())
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clock := manualBus(t)
			publish(t, b, "auth.user.created", "")
			c, s := consume(t, b, transport.ConsumerSpec{Durable: "users", AckWait: ackWait})
			c.Credit(10)
			d := s.next(t)
			assert.Equal(t, uint64(1), d.Attempt)
			start := clock.Now()
			tt.settle(t, b, clock, d)
			if !tt.redelivered {
				s.none(t, c)
				st, err := c.State(context.Background())
				require.NoError(t, err)
				assert.Equal(t, 0, st.AckPending)
				return
			}
			// Find the instant of the redelivery by moving the clock a
			// second at a time: it must come exactly when due, not before.
			var waited time.Duration
			for {
				select {
				case d2 := <-s.ch:
					if tt.name == "release: at once, not counted" {
						assert.Equal(t, uint64(1), d2.Attempt, "a release is not a delivery")
						exact, err := d2.Settler.ExactAttempt(context.Background())
						require.NoError(t, err)
						assert.Equal(t, uint64(1), exact)
					} else {
						assert.Equal(t, uint64(2), d2.Attempt)
					}
					assert.Equal(t, d.StreamSeq, d2.StreamSeq)
					want := map[string]time.Duration{
						"nak without delay: at once":            0,
						"release: at once, not counted":         0,
						"nak with delay: once the delay passed": 5 * time.Second,
						"no verdict: after AckWait":             ackWait,
						"in progress: AckWait restarts":         20*time.Second + ackWait,
					}[tt.name]
					assert.Equal(t, want, clock.Now().Sub(start), "redelivered at the due instant")
					st, err := c.State(context.Background())
					require.NoError(t, err)
					redelivered := 1
					if tt.name == "release: at once, not counted" {
						redelivered = 0
					}
					assert.Equal(t, transport.ConsumerState{AckPending: 1, Redelivered: redelivered, Waiting: 1, LastActive: clock.Now()}, st)
					return
				default:
				}
				require.Eventually(t, func() bool { return memory.Idle(c) }, 10*time.Second, time.Millisecond)
				if len(s.ch) > 0 {
					continue
				}
				require.Less(t, waited, 2*time.Minute, "never redelivered")
				clock.Advance(time.Second)
				waited += time.Second
				b.Tick()
			}
		})
	}
}

func TestBus_stale_settlements_of_an_earlier_delivery_do_not_touch_the_current_one(t *testing.T) {
	b, clock := manualBus(t)
	publish(t, b, "auth.user.created", "")
	c, s := consume(t, b, transport.ConsumerSpec{Durable: "users", AckWait: 10 * time.Second})
	c.Credit(10)
	first := s.next(t)
	clock.Advance(10 * time.Second)
	b.Tick()
	second := s.next(t)
	require.Equal(t, uint64(2), second.Attempt)
	require.NoError(t, first.Settler.Nak(0))
	require.NoError(t, first.Settler.InProgress())
	s.none(t, c)
	require.NoError(t, second.Settler.Ack(context.Background(), false))
	st, err := c.State(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, st.AckPending)
}

func TestBus_consumers_of_one_durable_share_its_messages(t *testing.T) {
	b, _ := manualBus(t)
	c1, s1 := consume(t, b, transport.ConsumerSpec{Durable: "users"})
	c2, s2 := consume(t, b, transport.ConsumerSpec{Durable: "users"})
	c1.Credit(100)
	c2.Credit(100)
	for range 10 {
		publish(t, b, "auth.user.created", "")
	}
	seen := map[uint64]int{}
	for range 10 {
		select {
		case d := <-s1.ch:
			seen[d.StreamSeq]++
		case d := <-s2.ch:
			seen[d.StreamSeq]++
		case <-time.After(10 * time.Second):
			t.Fatal("not every message delivered")
		}
	}
	s1.none(t, c1)
	s2.none(t, c2)
	assert.Len(t, seen, 10, "every message once")
	assert.Equal(t, 5, len(s1.ds), "turns: half each")
	assert.Equal(t, 5, len(s2.ds))

	other, so := consume(t, b, transport.ConsumerSpec{Durable: "audit"})
	other.Credit(100)
	for range 10 {
		so.next(t)
	}
	so.none(t, other)
}

func TestBus_max_ack_pending_caps_unsettled_messages_across_consumers(t *testing.T) {
	b, _ := manualBus(t)
	c1, s1 := consume(t, b, transport.ConsumerSpec{Durable: "users", MaxAckPending: 2})
	c2, s2 := consume(t, b, transport.ConsumerSpec{Durable: "users", MaxAckPending: 2})
	c1.Credit(10)
	c2.Credit(10)
	for range 5 {
		publish(t, b, "auth.user.created", "")
	}
	a := s1.next(t)
	assert.Equal(t, uint64(2), s2.next(t).StreamSeq)
	s1.none(t, c1)
	s2.none(t, c2)
	require.NoError(t, a.Settler.Ack(context.Background(), false))
	assert.Equal(t, uint64(3), s1.next(t).StreamSeq, "room for one more, for whoever's turn it is")
	s1.none(t, c1)
	s2.none(t, c2)
}

func TestBus_new_durable_starts_where_its_spec_says_and_an_existing_one_keeps_its_position(t *testing.T) {
	b, clock := manualBus(t)
	publish(t, b, "auth.user.created", "")
	clock.Advance(time.Minute)
	publish(t, b, "auth.user.created", "")
	publish(t, b, "auth.user.created", "")
	tests := []struct {
		name  string
		spec  transport.ConsumerSpec
		first uint64
	}{
		{"all", transport.ConsumerSpec{Durable: "all"}, 1},
		{"new", transport.ConsumerSpec{Durable: "new", Start: transport.StartNew}, 4},
		{"sequence", transport.ConsumerSpec{Durable: "seq", Start: transport.StartAtSequence, StartSeq: 3}, 3},
		{"time", transport.ConsumerSpec{Durable: "time", Start: transport.StartAtTime, StartTime: t0.Add(30 * time.Second)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := consume(t, b, tt.spec)
			c.Credit(1)
			if tt.first == 4 {
				s.none(t, c)
				publish(t, b, "auth.user.created", "")
			}
			d := s.next(t)
			assert.Equal(t, tt.first, d.StreamSeq)
			require.NoError(t, d.Settler.Ack(context.Background(), false))
			c.Stop()

			// Bound again with another start: the durable keeps its place.
			spec := tt.spec
			spec.Start, spec.StartSeq = transport.StartAtSequence, 1
			c2, s2 := consume(t, b, spec)
			c2.Credit(1)
			if tt.first < 4 {
				assert.Equal(t, tt.first+1, s2.next(t).StreamSeq)
			} else {
				s2.none(t, c2)
			}
		})
	}
}

func TestBus_consumer_state_counts_pending_ack_pending_and_redelivered(t *testing.T) {
	b, _ := manualBus(t)
	for range 4 {
		publish(t, b, "auth.user.created", "")
	}
	publish(t, b, "auth.login.failed", "")
	c, s := consume(t, b, transport.ConsumerSpec{Durable: "users", FilterSubjects: []string{"auth.user.*"}})
	st, err := b.ConsumerState("AUTH_EVENTS", "users")
	require.NoError(t, err)
	assert.Equal(t, transport.ConsumerState{Pending: 4}, st, "the filter leaves auth.login.failed out")
	c.Credit(2)
	d1, d2 := s.next(t), s.next(t)
	require.NoError(t, d1.Settler.Nak(0))
	c.Credit(1)
	s.next(t) // d1 again
	_ = d2
	st, err = c.State(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(2), st.Pending)
	assert.Equal(t, 2, st.AckPending)
	assert.Equal(t, 1, st.Redelivered)
	_, err = b.ConsumerState("AUTH_EVENTS", "nobody")
	assert.ErrorIs(t, err, memory.ErrNoConsumer)
}

func TestBus_dead_letter_is_stored_with_its_headers_and_de_duplicated(t *testing.T) {
	b, _ := manualBus(t)
	msg := &transport.Message{Subject: "dlq.auth.user.created", Header: map[string][]string{"Dlq-Reason": {"max_deliver"}}, Data: []byte("{}"), ID: "dlq:AUTH_EVENTS:7"}
	require.NoError(t, b.PublishDeadLetter(context.Background(), msg))
	require.NoError(t, b.PublishDeadLetter(context.Background(), msg), "a second publish is a success")
	dl := b.Messages("dlq.>")
	require.Len(t, dl, 1)
	assert.Equal(t, "DLQ", dl[0].Stream)
	assert.Equal(t, "max_deliver", dl[0].Header.Get("Dlq-Reason"))
	assert.Equal(t, "dlq:AUTH_EVENTS:7", dl[0].Header.Get(nats.MsgIdHdr))

	err := b.PublishDeadLetter(context.Background(), &transport.Message{Subject: "nowhere.x", ID: "1"})
	assert.ErrorIs(t, err, transport.ErrDeadLetter)
	assert.ErrorIs(t, err, transport.ErrNoStream)

	strict, err := memory.NewBus(memory.Config{DeadLetterStream: "DLQ", Streams: []memory.StreamConfig{{Name: "OTHER", Subjects: []string{"dlq.>"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = strict.Close() })
	assert.ErrorIs(t, strict.PublishDeadLetter(context.Background(), msg), memory.ErrWrongStream)
}

func TestBus_deleting_the_stream_ends_its_consumers_as_on_JetStream(t *testing.T) {
	b, _ := manualBus(t)
	var states []transport.State
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	c, _ := consume(t, b, transport.ConsumerSpec{Durable: "users", OnStatus: func(s transport.Status) {
		<-mu
		states = append(states, s.State)
		mu <- struct{}{}
	}})
	require.NoError(t, b.DeleteStream("AUTH_EVENTS"))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("consumer did not end")
	}
	assert.ErrorIs(t, c.Err(), transport.ErrConsumerEnded)
	assert.ErrorIs(t, c.Err(), transport.ErrNoStream)
	<-mu
	assert.Equal(t, []transport.State{transport.StateEnded}, states)
	mu <- struct{}{}
	_, err := b.Publish(context.Background(), "auth.user.created", nil, nil)
	assert.ErrorIs(t, err, transport.ErrNoStream)
}

func TestBus_end_consumer_ends_only_that_durable(t *testing.T) {
	b, _ := manualBus(t)
	users, _ := consume(t, b, transport.ConsumerSpec{Durable: "users"})
	audit, as := consume(t, b, transport.ConsumerSpec{Durable: "audit"})
	require.NoError(t, b.EndConsumer("AUTH_EVENTS", "users", errors.New("permissions withdrawn")))
	<-users.Done()
	assert.ErrorIs(t, users.Err(), transport.ErrConsumerEnded)
	assert.Contains(t, users.Err().Error(), "permissions withdrawn")
	assert.Nil(t, audit.Err())
	audit.Credit(1)
	publish(t, b, "auth.user.created", "")
	as.next(t)
	assert.ErrorIs(t, b.EndConsumer("AUTH_EVENTS", "nobody", nil), memory.ErrNoConsumer)
}

func TestBus_deleted_durable_is_recreated_from_the_spec_as_the_jetstream_transport_does(t *testing.T) {
	b, _ := manualBus(t)
	statuses := make(chan transport.Status, 4)
	c, s := consume(t, b, transport.ConsumerSpec{Durable: "users", OnStatus: func(st transport.Status) { statuses <- st }})
	publish(t, b, "auth.user.created", "")
	c.Credit(10)
	old := s.next(t)
	require.NoError(t, b.DeleteConsumer("AUTH_EVENTS", "users"))
	assert.Equal(t, transport.StateStalled, (<-statuses).State)
	assert.Equal(t, transport.StateActive, (<-statuses).State)
	again := s.next(t)
	assert.Equal(t, old.StreamSeq, again.StreamSeq, "StartAll: the recreated durable starts over")
	assert.Equal(t, uint64(1), again.Attempt, "a new durable counts from 1")
	require.NoError(t, old.Settler.Ack(context.Background(), false), "settling through the deleted durable is harmless")
	st, err := c.State(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, st.AckPending, "and does not settle the new delivery")
	assert.Nil(t, c.Err())
}

func TestBus_stop_hands_undelivered_messages_to_the_other_consumers_at_once(t *testing.T) {
	b, _ := manualBus(t)
	for range 3 {
		publish(t, b, "auth.user.created", "")
	}
	inSink := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	a, err := b.Consume(context.Background(), transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "users", FilterSubjects: []string{"auth.>"}},
		func(*transport.Delivery) {
			calls++
			if calls == 1 {
				close(inSink)
				<-release
			}
		})
	require.NoError(t, err)
	a.Credit(3) // one in the sink (blocked), two assigned behind it
	<-inSink
	other, so := consume(t, b, transport.ConsumerSpec{Durable: "users"})
	other.Credit(10)
	stopped := make(chan struct{})
	go func() { a.Stop(); close(stopped) }()
	got := []uint64{so.next(t).StreamSeq, so.next(t).StreamSeq}
	assert.ElementsMatch(t, []uint64{2, 3}, got, "handed back while the sink still held the first")
	close(release)
	<-stopped
	assert.Equal(t, 1, calls, "nothing reached the stopped consumer's sink after Stop")
	assert.Nil(t, a.Err(), "a stop is not a failure")
}

func TestBus_close_ends_consumers_and_refuses_what_follows(t *testing.T) {
	b, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: "S", Subjects: []string{"s.>"}}}})
	require.NoError(t, err)
	c, err := b.Consume(context.Background(), transport.ConsumerSpec{Stream: "S", Durable: "d", FilterSubjects: []string{"s.>"}}, func(*transport.Delivery) {})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	<-c.Done()
	assert.ErrorIs(t, c.Err(), transport.ErrConsumerEnded)
	assert.ErrorIs(t, c.Err(), transport.ErrClosed)
	c.Stop()
	_, err = b.Publish(context.Background(), "s.x", nil, nil)
	assert.ErrorIs(t, err, transport.ErrClosed)
	_, err = b.Consume(context.Background(), transport.ConsumerSpec{Stream: "S", Durable: "d", FilterSubjects: []string{"s.>"}}, func(*transport.Delivery) {})
	assert.ErrorIs(t, err, transport.ErrClosed)
	assert.NoError(t, b.Close(), "idempotent")
}

func TestBus_consume_refuses_bad_specs_with_typed_errors(t *testing.T) {
	b, _ := manualBus(t)
	sinkFn := func(*transport.Delivery) {}
	tests := []struct {
		name string
		spec transport.ConsumerSpec
		err  error
	}{
		{"missing stream", transport.ConsumerSpec{Stream: "NOPE", Durable: "d", FilterSubjects: []string{"x"}}, transport.ErrNoStream},
		{"bad durable", transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "a.b", FilterSubjects: []string{"auth.>"}}, envelope.ErrInvalidConfig},
		{"no filter", transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d"}, envelope.ErrInvalidConfig},
		{"filter outside the stream", transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d", FilterSubjects: []string{"orders.>"}}, envelope.ErrInvalidConfig},
		{"bad filter", transport.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "d", FilterSubjects: []string{"auth.>.x"}}, envelope.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Consume(context.Background(), tt.spec, sinkFn)
			assert.ErrorIs(t, err, tt.err)
			assert.ErrorIs(t, err, transport.ErrSubscribe)
		})
	}
}

func TestBus_nak_delay_and_ack_wait_run_on_the_bus_timer_with_the_system_clock(t *testing.T) {
	b, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: "S", Subjects: []string{"s.>"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s := newSink()
	c, err := b.Consume(context.Background(), transport.ConsumerSpec{Stream: "S", Durable: "d", FilterSubjects: []string{"s.>"}, AckWait: 200 * time.Millisecond}, s.put)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	c.Credit(10)
	_, err = b.Publish(context.Background(), "s.x", nil, []byte("x"))
	require.NoError(t, err)
	first := s.next(t)
	naked := time.Now()
	require.NoError(t, first.Settler.Nak(100*time.Millisecond))
	second := s.next(t)
	assert.GreaterOrEqual(t, time.Since(naked), 100*time.Millisecond, "not before the delay")
	assert.Equal(t, uint64(2), second.Attempt)
	third := s.next(t) // never settled: AckWait expires
	// The AckWait clock starts when the bus delivered it (Received), not
	// when this goroutine got it.
	assert.GreaterOrEqual(t, time.Since(second.Received), 200*time.Millisecond, "not before AckWait")
	assert.Equal(t, uint64(3), third.Attempt)
}

func TestBus_messages_returns_copies(t *testing.T) {
	b, _ := manualBus(t)
	publish(t, b, "auth.user.created", "id")
	m := b.Messages("auth.>")[0]
	m.Data[0] = 'X'
	m.Header.Set(nats.MsgIdHdr, "changed")
	again := b.Messages("auth.>")[0]
	assert.Equal(t, `{"n":1}`, string(again.Data))
	assert.Equal(t, "id", again.Header.Get(nats.MsgIdHdr))
	assert.True(t, strings.HasPrefix(again.Subject, "auth."))
	info, err := b.Stream("AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.Msgs)
	_, err = b.Stream("NOPE")
	assert.ErrorIs(t, err, transport.ErrNoStream)
}

// TestBus_close_leaves_no_goroutine_behind: the timer goroutine, every
// consumer's goroutine and a Subscriber's workers all end with Close.
func TestBus_close_leaves_no_goroutine_behind(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: "S", Subjects: []string{"s.>"}}}})
	require.NoError(t, err)
	for _, d := range []string{"a", "b"} {
		c, err := b.Consume(context.Background(), transport.ConsumerSpec{Stream: "S", Durable: d, FilterSubjects: []string{"s.>"}, AckWait: time.Hour}, func(*transport.Delivery) {})
		require.NoError(t, err)
		c.Credit(1)
	}
	sub, err := subscriber.New(b, subscriber.Config{Stream: "S", Concurrency: 3})
	require.NoError(t, err)
	msgs, err := sub.Subscribe(context.Background(), "s.x")
	require.NoError(t, err)
	_, err = b.Publish(context.Background(), "s.x", nil, []byte("x")) // a pending ack deadline arms the timer
	require.NoError(t, err)
	assert.Greater(t, runtime.NumGoroutine(), before)
	require.NoError(t, b.Close())
	require.NoError(t, sub.Close())
	for range msgs {
	}
	// Polled here rather than with require.Eventually, whose own goroutines
	// would be counted.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(time.Millisecond)
	}
}
