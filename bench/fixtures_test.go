package bench_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
	"github.com/jetevents/events/marshaler"
)

// These tests keep the benchmarks honest: every variant, run for a few
// events, must store (or consume and ack) every one of them, and the check
// that says so must fail when nothing was done.

func TestVariants_every_operation_has_its_baseline_first(t *testing.T) {
	for _, op := range bench.Ops {
		vs := bench.VariantsOf(op)
		require.NotEmpty(t, vs, op)
		assert.Equal(t, bench.Baseline(op), vs[0].Impl, "first %s variant", op)
	}
	// The router rows compare with a user's own consumer, not with the
	// transport baseline that uses this library's decoder.
	assert.Equal(t, bench.ImplRawConsumeJSON, bench.Baseline(bench.OpRouter))
}

func TestVariants_store_or_consume_every_event(t *testing.T) {
	// 250: not a multiple of the batch size, so a short last batch is covered.
	const n = 250
	for _, v := range bench.Variants() {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/size=%d", v.Name(), size), func(t *testing.T) {
				ctx := context.Background()
				trial, err := v.Prepare(ctx, env, bench.Params{N: n, Size: size, Timeout: 20 * time.Second})
				require.NoError(t, err)
				defer func() { require.NoError(t, trial.Close()) }()
				require.Equal(t, n, trial.N)
				require.NoError(t, trial.Run(ctx))
				require.NoError(t, trial.Verify(ctx))
			})
		}
	}
}

func TestVariants_verify_fails_when_nothing_was_done(t *testing.T) {
	for _, v := range bench.Variants() {
		t.Run(v.Name(), func(t *testing.T) {
			ctx := context.Background()
			trial, err := v.Prepare(ctx, env, bench.Params{N: 10, Timeout: 5 * time.Second})
			require.NoError(t, err)
			defer func() { require.NoError(t, trial.Close()) }()
			err = trial.Verify(ctx)
			require.Error(t, err)
			assert.True(t, errors.Is(err, bench.ErrVerify), "%v", err)
		})
	}
}

func TestRawMsg_has_the_publishers_payload_and_headers(t *testing.T) {
	events, err := bench.Events(1, 512)
	require.NoError(t, err)
	e := events[0]
	want, err := marshaler.Default().EventToNATS("bench.1.user.created", e, marshaler.Relations{})
	require.NoError(t, err)

	got, err := bench.RawMsg("bench.1.user.created", e)
	require.NoError(t, err)

	assert.Equal(t, want.Subject, got.Subject)
	assert.Equal(t, string(want.Data), string(got.Data))
	assert.Equal(t, want.Header, got.Header)
}

func TestEvents_have_unique_ids_and_data_of_the_asked_size(t *testing.T) {
	for _, size := range sizes {
		events, err := bench.Events(100, size)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, e := range events {
			require.NoError(t, e.Validate())
			assert.Len(t, e.Data, size)
			assert.False(t, seen[e.ID], "duplicate id %s", e.ID)
			seen[e.ID] = true
		}
	}
}

func TestData_refuses_a_size_below_its_fixed_part(t *testing.T) {
	_, err := bench.Data(8)
	require.Error(t, err)
}
