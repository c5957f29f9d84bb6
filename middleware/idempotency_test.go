package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/middleware"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newIdempotency(t *testing.T, store idempotency.Store, onErr func(error)) *middleware.Idempotency {
	t.Helper()
	i, err := middleware.NewIdempotency(middleware.IdempotencyConfig{Store: store, OnError: onErr})
	require.NoError(t, err)
	return i
}

// step is one delivery in an idempotency scenario.
type step struct {
	seq, attempt uint64
	handlerErr   error
	advance      time.Duration // clock moves before the delivery
	wantCalled   bool
	wantErrIs    error // nil = the middleware returns nil (message acked)
}

func TestIdempotency_scenarios_with_memory_store(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		steps []step
	}{
		{"second copy of a handled event is acked unhandled", []step{
			{seq: 1, attempt: 1, wantCalled: true},
			{seq: 2, attempt: 1, wantCalled: false},
			{seq: 1, attempt: 2, wantCalled: false}, // redelivery of the same message
		}},
		{"failure releases the claim: the retry handles it", []step{
			{seq: 1, attempt: 1, handlerErr: boom, wantCalled: true, wantErrIs: boom},
			{seq: 1, attempt: 2, wantCalled: true},
			{seq: 1, attempt: 3, wantCalled: false},
		}},
		{"processed id is forgotten after the TTL", []step{
			{seq: 1, attempt: 1, wantCalled: true},
			{seq: 2, attempt: 1, advance: time.Hour, wantCalled: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := eventstest.NewClock(t0)
			store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{TTL: time.Hour - time.Second, Clock: clock})
			require.NoError(t, err)
			mw := newIdempotency(t, store, nil)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				calls := 0
				_, err := mw.Middleware(handlerReturning(&calls, s.handlerErr))(delivered("ev-1", "auth.user.created", s.seq, s.attempt))
				assert.Equal(t, s.wantCalled, calls == 1, "step %d: handler called", i)
				if s.wantErrIs == nil {
					assert.NoError(t, err, "step %d", i)
				} else {
					assert.ErrorIs(t, err, s.wantErrIs, "step %d", i)
				}
			}
		})
	}
}

// TestIdempotency_claims_between_concurrent_deliveries drives the claim rules
// with a first delivery still inside its handler.
func TestIdempotency_claims_between_concurrent_deliveries(t *testing.T) {
	tests := []struct {
		name       string
		second     *message.Message
		advance    time.Duration
		wantCalled bool
		wantErrIs  error
	}{
		{"another stream message with the same event id is a duplicate: acked", delivered("ev-1", "s.a", 2, 1), 0, false, nil},
		{"a later attempt of the same message takes over", delivered("ev-1", "s.a", 1, 2), 0, true, nil},
		{"the same attempt again is busy: retried", delivered("ev-1", "s.a", 1, 1), 0, false, middleware.ErrClaimed},
		{"unidentified delivery meets a live claim: retried", message.NewMessage("ev-1", nil), 0, false, middleware.ErrClaimed},
		{"unidentified delivery takes over an expired claim", message.NewMessage("ev-1", nil), idempotency.DefaultClaimTTL, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := eventstest.NewClock(t0)
			store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{Clock: clock})
			require.NoError(t, err)
			mw, err := middleware.NewIdempotency(middleware.IdempotencyConfig{Store: store, Namespace: "ns"})
			require.NoError(t, err)

			entered, release := make(chan struct{}), make(chan struct{})
			firstDone := make(chan error, 1)
			first := delivered("ev-1", "s.a", 1, 1)
			go func() {
				_, err := mw.Middleware(func(*message.Message) ([]*message.Message, error) {
					close(entered)
					<-release
					return nil, nil
				})(first)
				firstDone <- err
			}()
			waitFor(t, entered)

			clock.Advance(tt.advance)
			calls := 0
			_, err = mw.Middleware(handlerReturning(&calls, nil))(tt.second)
			assert.Equal(t, tt.wantCalled, calls == 1)
			if tt.wantErrIs == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErrIs)
			}
			close(release)
			assert.NoError(t, <-firstDone)
		})
	}
}

func TestIdempotency_record_failure_is_reported_and_still_acked(t *testing.T) {
	var reported []error
	mw := newIdempotency(t, failingStore{}, func(err error) { reported = append(reported, err) })
	calls := 0
	_, err := mw.Middleware(handlerReturning(&calls, nil))(delivered("ev", "s.a", 1, 1))
	require.NoError(t, err, "the handler did its work")
	assert.Equal(t, 1, calls)
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], idempotency.ErrStore)
}

func TestIdempotency_claim_failure_is_retried_not_acked(t *testing.T) {
	mw := newIdempotency(t, failingStore{claim: true}, nil)
	calls := 0
	_, err := mw.Middleware(handlerReturning(&calls, nil))(delivered("ev", "s.a", 1, 1))
	assert.ErrorIs(t, err, idempotency.ErrStore)
	assert.Zero(t, calls)
}

func TestIdempotency_requires_a_store(t *testing.T) {
	_, err := middleware.NewIdempotency(middleware.IdempotencyConfig{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}

func TestMemoryStore_is_a_watermill_expiring_key_repository(t *testing.T) {
	clock := eventstest.NewClock(t0)
	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{TTL: time.Minute, Clock: clock})
	require.NoError(t, err)
	ctx := context.Background()
	for i, want := range []bool{false, true, true} {
		dup, err := store.IsDuplicate(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, want, dup, "call %d", i)
	}
	clock.Advance(time.Minute)
	dup, err := store.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.False(t, dup, "expired after the TTL")
}

func TestMemoryStore_concurrent_claims_acquire_once(t *testing.T) {
	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
	require.NoError(t, err)
	var acquired atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			c, err := store.Claim(context.Background(), "k", idempotency.Holder{Stream: "S", StreamSeq: uint64(i + 1), Attempt: 1})
			assert.NoError(t, err)
			if c.Status == idempotency.ClaimAcquired {
				acquired.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), acquired.Load())
}

// failingStore fails Complete and Release, and Claim when claim is set.
type failingStore struct{ claim bool }

var errStoreDown = errors.New("store down")

func (f failingStore) Claim(_ context.Context, key string, h idempotency.Holder) (idempotency.Claim, error) {
	if f.claim {
		return idempotency.Claim{}, errors.Join(idempotency.ErrStore, errStoreDown)
	}
	return idempotency.Claim{Key: key, Status: idempotency.ClaimAcquired, Holder: h}, nil
}
func (failingStore) Complete(context.Context, idempotency.Claim) error {
	return errors.Join(idempotency.ErrStore, errStoreDown)
}
func (failingStore) Release(context.Context, idempotency.Claim) error {
	return errors.Join(idempotency.ErrStore, errStoreDown)
}

func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
	}
}

func TestMemoryStore_expired_claim_of_another_copy_is_taken_over(t *testing.T) {
	clock := eventstest.NewClock(time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC))
	s, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{ClaimTTL: time.Minute, Clock: clock})
	require.NoError(t, err)
	ctx := context.Background()

	// Copy 1 (seq 10) claims and its process dies: the claim is never released.
	c1, err := s.Claim(ctx, "ev-1", idempotency.Holder{Stream: "S", StreamSeq: 10, Attempt: 2})
	require.NoError(t, err)
	require.Equal(t, idempotency.ClaimAcquired, c1.Status)

	// A live claim of another copy: this copy is a duplicate (copy 1 settles it).
	c2, err := s.Claim(ctx, "ev-1", idempotency.Holder{Stream: "S", StreamSeq: 50, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimDuplicate, c2.Status)

	// Once the claim expired, a later copy (e.g. a dead-letter replay) takes
	// over instead of being acked unhandled.
	clock.Advance(time.Minute + time.Second)
	c3, err := s.Claim(ctx, "ev-1", idempotency.Holder{Stream: "S", StreamSeq: 50, Attempt: 1})
	require.NoError(t, err)
	assert.Equal(t, idempotency.ClaimAcquired, c3.Status)
}
