package bench_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

func TestWriteTable_ratio_is_relative_to_raw_of_the_same_operation_and_size(t *testing.T) {
	results := []bench.Result{
		{Op: bench.OpSync, Impl: bench.ImplRaw, Size: 512, N: 1000, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplJetevents, Size: 512, N: 950, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplRaw, Size: 4096, N: 500, Elapsed: time.Second},
		{Op: bench.OpSync, Impl: bench.ImplJetevents, Size: 4096, N: 400, Elapsed: time.Second},
		{Op: bench.OpConsume, Impl: bench.ImplWatermill, Size: 512, N: 10, Elapsed: time.Second},
	}
	var b strings.Builder
	require.NoError(t, bench.WriteTable(&b, results))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2+len(results))
	assert.Contains(t, lines[3], "| sync | jetevents | 512 B | 950 | 0.5 | 0.95x | >= 0.9x: met |")
	assert.Contains(t, lines[5], "| sync | jetevents | 4 KiB | 400 | 1.6 | 0.80x | >= 0.9x: missed |")
	assert.Contains(t, lines[6], "| consume | watermill-nats | 512 B | 10 | 0.0 | n/a |")
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
