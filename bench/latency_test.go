package bench_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

// LatencyBenchRate is BenchmarkLatency's open-loop rate: about a fifth of the
// raw consumer's maximum at 512 B on 2 cores, so that every row keeps up.
const latencyBenchRate = 20000

// BenchmarkLatency is the end-to-end latency of each latency row at a fixed
// open-loop rate (latencyBenchRate events/s; b.N events, so b.N/rate
// seconds): publish due time to handler entry, reported as p50-µs, p99-µs,
// p99.9-µs and max-µs (ns/op is the publisher's schedule, not a cost). The
// full sweep over loads is `go run ./cmd/jetevents-bench -ops latency`.
func BenchmarkLatency(b *testing.B) {
	for _, row := range bench.LatencyRows() {
		b.Run(fmt.Sprintf("size=512/impl=%s", row), func(b *testing.B) {
			ctx := context.Background()
			p := bench.LatencyParams{
				Rate:     latencyBenchRate,
				Duration: time.Duration(float64(b.N) / latencyBenchRate * float64(time.Second)),
				Warmup:   -1, // b.N is the sample: record every event
				Size:     512,
			}
			b.ResetTimer()
			r, err := bench.MeasureLatency(ctx, env, row, p)
			b.StopTimer()
			require.NoError(b, err)
			b.ReportMetric(float64(r.Percentile(50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(r.Percentile(99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(r.Percentile(99.9).Microseconds()), "p99.9-µs")
			b.ReportMetric(float64(r.Max().Microseconds()), "max-µs")
		})
	}
}

// The smoke test of the latency rows: each, for 300 events at 1,000/s,
// handles every event once and records the ones after the warm-up.
func TestLatency_every_row_handles_each_event_once_and_records_it(t *testing.T) {
	ctx := context.Background()
	var results []bench.LatencyResult
	for _, row := range bench.LatencyRows() {
		t.Run(string(row), func(t *testing.T) {
			r, err := bench.MeasureLatency(ctx, env, row, bench.LatencyParams{
				Rate: 1000, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Drain: 30 * time.Second,
			})
			require.NoError(t, err)
			assert.Equal(t, 300, r.Sent)
			assert.Equal(t, 200, r.Recorded, "the events due after the warm-up")
			assert.Equal(t, int64(r.Recorded), r.Latency.TotalCount())
			assert.Equal(t, int64(r.Recorded), r.SendLag.TotalCount())
			assert.Positive(t, r.Percentile(50))
			assert.LessOrEqual(t, r.Percentile(50), r.Percentile(99))
			assert.LessOrEqual(t, r.Percentile(99.9), r.Max())
			r.Load = 0.5
			results = append(results, r)
		})
	}
	require.Len(t, results, len(bench.LatencyRows()))

	// The report: a line per row plus the pending slot, the goal's verdict,
	// and a plot with a line per row that parses as XML.
	sums := bench.MergeLatency(append(results, results...))
	require.Len(t, sums, len(results))
	assert.Len(t, sums[0].RoundP99, 2, "two rounds")
	assert.Equal(t, int64(2*results[0].Recorded), sums[0].Latency.TotalCount(), "the distribution holds both rounds")
	assert.Equal(t, results[0].Percentile(99), sums[0].Percentile(99), "the median round's (both rounds are the same)")
	assert.Equal(t, results[0].Max(), sums[0].Max())
	var table bytes.Buffer
	require.NoError(t, bench.WriteLatencyTable(&table, sums))
	for _, row := range bench.LatencyRows() {
		assert.Contains(t, table.String(), "| "+string(row)+" |")
	}
	assert.Contains(t, table.String(), "Goal at 50 % load, 512 B: router-default p99")
	var svg bytes.Buffer
	require.NoError(t, bench.WriteLatencySVG(&svg, sums, 512, 99))
	require.NoError(t, xml.Unmarshal(svg.Bytes(), new(struct{})), "well-formed SVG")
	assert.Equal(t, len(results), strings.Count(svg.String(), "<polyline"))
	var dist bytes.Buffer
	require.NoError(t, bench.WriteLatencyDistributions(&dist, sums))
	assert.Contains(t, dist.String(), "Percentile")
}

func TestLatency_refuses_a_row_it_does_not_know(t *testing.T) {
	_, err := bench.MeasureLatency(context.Background(), env, bench.LatencyRow("router-unknown"), bench.LatencyParams{Rate: 100, Duration: time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "router-unknown")
}

func TestKeyedOrderKey_spreads_events_over_256_keys(t *testing.T) {
	events, err := bench.Events(5000, 512)
	require.NoError(t, err)
	keys := map[string]int{}
	for _, e := range events {
		keys[bench.KeyedOrderKey(e)]++
	}
	assert.Len(t, keys, 256)
}

func TestMergeLatency_reports_the_median_round(t *testing.T) {
	round := func(us int64) bench.LatencyResult {
		h := bench.NewLatencyHistogram()
		for range 100 {
			require.NoError(t, h.RecordValue(us))
		}
		return bench.LatencyResult{Row: bench.LatencyRaw, Size: 512, Rate: 1000, Latency: h, SendLag: bench.NewLatencyHistogram(), Recorded: 100}
	}
	// One round disturbed by other work (100 ms) does not make the row's
	// numbers; the distribution keeps all three rounds.
	sums := bench.MergeLatency([]bench.LatencyResult{round(1000), round(100000), round(5000)})
	require.Len(t, sums, 1)
	assert.Equal(t, []time.Duration{time.Millisecond, 100 * time.Millisecond, 5 * time.Millisecond}, roundMillis(sums[0].RoundP99))
	assert.Equal(t, 5*time.Millisecond, sums[0].Percentile(99).Round(time.Millisecond))
	assert.Equal(t, 5*time.Millisecond, sums[0].Max().Round(time.Millisecond))
	assert.Equal(t, int64(300), sums[0].Latency.TotalCount())
}

func roundMillis(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
