package consume

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/transport"
)

// These are unit tests of the keyed backlog's rules, on a fake clock; the
// router's order tests run the same rules on both transports.

func keyedDelivery(key string, seq uint64) *transport.Delivery {
	return &transport.Delivery{Subject: key, StreamSeq: seq, Attempt: 1}
}

func bySubject(d *transport.Delivery) string { return d.Subject }

func TestLanes_one_message_of_a_key_at_a_time_keys_in_turn(t *testing.T) {
	now := time.Unix(0, 0)
	ls := newLanes(bySubject, 4)
	for i, k := range []string{"a", "a", "b", "a", "b"} {
		held, _ := ls.add(keyedDelivery(k, uint64(i+1)), now)
		require.True(t, held)
	}
	d1, _, ok := ls.take(now)
	require.True(t, ok)
	d2, _, ok := ls.take(now)
	require.True(t, ok)
	assert.Equal(t, []uint64{1, 3}, []uint64{d1.StreamSeq, d2.StreamSeq}, "the heads of a and b")
	_, _, ok = ls.take(now)
	assert.False(t, ok, "both keys have a message in a handler")

	ls.done(d2, transport.Verdict{Kind: transport.Handled}, now)
	ls.done(d1, transport.Verdict{Kind: transport.Handled}, now)
	d3, _, _ := ls.take(now)
	d4, _, _ := ls.take(now)
	assert.Equal(t, []uint64{5, 2}, []uint64{d3.StreamSeq, d4.StreamSeq}, "keys take turns in the order they became ready")
}

func TestLanes_a_failed_head_is_kept_and_holds_its_key_until_its_delay(t *testing.T) {
	now := time.Unix(0, 0)
	ls := newLanes(bySubject, 4)
	ls.add(keyedDelivery("a", 1), now)
	ls.add(keyedDelivery("a", 2), now)
	d, runs, _ := ls.take(now)
	require.Zero(t, runs)
	kept, release, _ := ls.done(d, transport.Verdict{Kind: transport.Retried, Delay: time.Second}, now)
	require.True(t, kept, "a failed head is kept for its local retry, never nacked past its successor")
	assert.Empty(t, release)
	assert.Equal(t, now.Add(time.Second), ls.nextDue())

	_, _, ok := ls.take(now.Add(999 * time.Millisecond))
	assert.False(t, ok, "neither the head before its delay nor its successor")
	d, runs, ok = ls.take(now.Add(time.Second))
	require.True(t, ok)
	assert.Equal(t, uint64(1), d.StreamSeq)
	assert.Equal(t, 1, runs)
	assert.EqualValues(t, 2, d.Attempt, "the local retry counts as an attempt")
}

func TestLanes_a_blocked_key_keeps_its_share_and_the_rest_waits_outside(t *testing.T) {
	now := time.Unix(0, 0)
	ls := newLanes(bySubject, 3)
	for seq := uint64(1); seq <= 6; seq++ {
		ls.add(keyedDelivery("a", seq), now)
	}
	d, _, _ := ls.take(now)
	kept, release, delay := ls.done(d, transport.Verdict{Kind: transport.Retried, Delay: time.Second}, now)
	require.True(t, kept)
	var seqs []uint64
	for _, r := range release {
		seqs = append(seqs, r.StreamSeq)
	}
	assert.ElementsMatch(t, []uint64{4, 5, 6}, seqs, "beyond its share, the key's last messages are released")
	assert.Equal(t, time.Second, delay)
	assert.Equal(t, 3, ls.len())

	// A later message arriving while the key waits goes out too.
	held, wait := ls.add(keyedDelivery("a", 7), now.Add(100*time.Millisecond))
	assert.False(t, held)
	assert.Equal(t, 900*time.Millisecond, wait, "until the released ones are due back")

	// Another key is not held back.
	held, _ = ls.add(keyedDelivery("b", 8), now)
	require.True(t, held)
	d, _, ok := ls.take(now)
	require.True(t, ok)
	assert.Equal(t, uint64(8), d.StreamSeq)
}

func TestLanes_a_message_back_before_an_earlier_released_one_goes_out_again(t *testing.T) {
	// The credit trap: were 6 held when it comes back before 5, the key's
	// later messages could take the credit 5 needs to come back.
	now := time.Unix(0, 0)
	ls := newLanes(bySubject, 1)
	for seq := uint64(1); seq <= 3; seq++ {
		ls.add(keyedDelivery("a", seq), now)
	}
	d, _, _ := ls.take(now)
	_, release, _ := ls.done(d, transport.Verdict{Kind: transport.Retried, Delay: time.Second}, now)
	require.Len(t, release, 2)

	later := now.Add(2 * time.Second)
	d, _, _ = ls.take(later)
	ls.done(d, transport.Verdict{Kind: transport.Handled}, later)

	held, wait := ls.add(keyedDelivery("a", 3), later)
	assert.False(t, held, "3 is back before 2")
	assert.Equal(t, minGapWait, wait)
	held, _ = ls.add(keyedDelivery("a", 2), later)
	assert.True(t, held)
	_, _, ok := ls.take(later)
	assert.True(t, ok)
	held, _ = ls.add(keyedDelivery("a", 3), later.Add(minGapWait))
	assert.True(t, held, "3 is taken once 2 is back")
}

func TestLanes_a_redelivery_of_a_held_message_replaces_it(t *testing.T) {
	now := time.Unix(0, 0)
	ls := newLanes(bySubject, 4)
	ls.add(keyedDelivery("a", 1), now)
	ls.add(keyedDelivery("a", 2), now)
	head, _, _ := ls.take(now)

	held, release := ls.add(keyedDelivery("a", 1), now)
	assert.False(t, held, "the head is in its handler: its settlement covers the redelivery")
	assert.Zero(t, release)

	again := keyedDelivery("a", 2)
	held, _ = ls.add(again, now)
	assert.False(t, held)
	ls.done(head, transport.Verdict{Kind: transport.Handled}, now)
	d, _, _ := ls.take(now)
	assert.Same(t, again, d, "the newer delivery holds the lease")
}
