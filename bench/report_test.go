package bench_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

func TestWriteTable_ratio_is_relative_to_the_baseline_of_the_same_operation_and_size(t *testing.T) {
	results := []bench.Result{
		{Op: bench.OpSync, Impl: bench.ImplRaw, Size: 512, N: 1000, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplJetevents, Size: 512, N: 950, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplRaw, Size: 4096, N: 500, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplJetevents, Size: 4096, N: 400, Elapsed: time.Second},
		{Op: bench.OpConsume, Impl: bench.ImplWatermill, Size: 512, N: 10, Elapsed: time.Second},
		// The consume transport baseline is not the router rows' baseline.
		{Op: bench.OpConsume, Impl: bench.ImplRawOurDecoder, Size: 512, N: 100, Elapsed: time.Second},
		{Op: bench.OpRouter, Impl: bench.ImplRouterKVIdempotency, Size: 512, N: 100, Elapsed: time.Second},
	}
	var b strings.Builder
	require.NoError(t, bench.WriteTable(&b, results))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2+len(results))
	assert.Contains(t, lines[3], "| sync | jetevents | 512 B | 950 | 0.5 | 0.95x | >= 0.9x raw: met |")
	assert.Contains(t, lines[5], "| sync | jetevents | 4 KiB | 400 | 1.6 | 0.80x | >= 0.9x raw: missed |")
	assert.Contains(t, lines[6], "| consume | watermill-nats | 512 B | 10 | 0.0 | 0.10x |  |")
	assert.Contains(t, lines[8], "| router | router-kv-idempotency | 512 B | 100 | 0.1 | n/a | >= 0.5x raw-consume-json: n/a (no raw-consume-json row) |")
}

func TestWriteTable_reports_cpu_and_allocations_per_event(t *testing.T) {
	results := []bench.Result{{
		Op: bench.OpRouter, Impl: bench.ImplRawConsumeJSON, Size: 512, N: 1000, Elapsed: time.Second,
		CPU: 12500 * time.Microsecond, Mallocs: 41500,
	}}
	var b strings.Builder
	require.NoError(t, bench.WriteTable(&b, results))
	assert.Contains(t, b.String(), "| router | raw-consume-json | 512 B | 1000 | 0.5 | 1.00x |  | 12.5 | 41.5 |\n")
}

func TestWriteTable_router_default_is_held_to_the_size_target_and_to_watermill(t *testing.T) {
	row := func(impl bench.Impl, size, n int) bench.Result {
		return bench.Result{Op: bench.OpRouter, Impl: impl, Size: size, N: n, Elapsed: time.Second}
	}
	results := []bench.Result{
		row(bench.ImplRawConsumeJSON, 512, 1000),
		row(bench.ImplRouterDefault, 512, 700),
		row(bench.ImplWatermillRouter, 512, 600),
		row(bench.ImplRawConsumeJSON, 4096, 1000),
		row(bench.ImplRouterDefault, 4096, 840),
		row(bench.ImplWatermillRouter, 4096, 500),
	}
	var b strings.Builder
	require.NoError(t, bench.WriteTable(&b, results))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// 700/1000 meets 0.7x; 700/600 = 1.17x misses 1.3x.
	assert.Contains(t, lines[3], "| 0.70x | >= 0.7x raw-consume-json: met; >= 1.3x watermill-nats-router: missed (1.17x) |")
	// 840/1000 misses the 4 KiB target of 0.85x; 840/500 = 1.68x meets 1.3x.
	assert.Contains(t, lines[6], "| 0.84x | >= 0.85x raw-consume-json: missed; >= 1.3x watermill-nats-router: met (1.68x) |")
}

func TestWriteTable_concurrency_row_is_held_to_the_ideal_rate(t *testing.T) {
	tests := []struct {
		name string
		impl bench.Impl
		n    int
		want string
	}{
		{name: "below 90 percent", n: 5680, want: "| 71% of 8000/s (>= 90%): missed |"},
		{name: "at 90 percent", n: 7200, want: "| 90% of 8000/s (>= 90%): met |"},
		{name: "raw reference has no verdict", impl: bench.ImplRawConc8Sleep1ms, n: 7100, want: "| 89% of 8000/s |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.impl == "" {
				tt.impl = bench.ImplRouterConc8Sleep1ms
			}
			results := []bench.Result{{Op: bench.OpRouter, Impl: tt.impl, Size: 4096, N: tt.n, Elapsed: time.Second}}
			var b strings.Builder
			require.NoError(t, bench.WriteTable(&b, results))
			assert.Contains(t, b.String(), tt.want)
		})
	}
}

func TestResult_per_event_figures_divide_by_the_event_count(t *testing.T) {
	r := bench.Result{N: 4, Size: 1000, Elapsed: 2 * time.Second, CPU: 8 * time.Microsecond, Mallocs: 10}
	assert.Equal(t, 2.0, r.MsgsPerSec())
	assert.Equal(t, 0.002, r.MBPerSec())
	assert.Equal(t, 2*time.Microsecond, r.CPUPerMsg())
	assert.Equal(t, 2.5, r.AllocsPerMsg())
	// No events: no division by zero.
	assert.Equal(t, 0.0, bench.Result{}.AllocsPerMsg())
}

func TestMedian_keeps_the_middle_result_per_variant_and_size(t *testing.T) {
	r := func(n int) bench.Result {
		return bench.Result{Op: bench.OpAsync, Impl: bench.ImplRaw, Size: 512, N: n, Elapsed: time.Second}
	}
	other := bench.Result{Op: bench.OpAsync, Impl: bench.ImplJetevents, Size: 512, N: 7, Elapsed: time.Second}
	got := bench.Median([]bench.Result{r(30), other, r(10), r(20)})
	require.Len(t, got, 2)
	assert.Equal(t, 20, got[0].N)
	assert.Equal(t, other, got[1])
}
