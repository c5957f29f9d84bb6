package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jetevents/events/bench"
)

// latencyRun is what -ops latency measures.
type latencyRun struct {
	sizes     []int
	rounds    int
	n         int // events per consume-only trial
	capacityN int // events per capacity trial
	loads     []float64
	duration  time.Duration
	out       string
}

// runLatency measures the raw consumer's maximum at each size, then every
// latency row at each load, rounds alternating (each round starts with the
// next row), and prints the table; with an out directory it writes the
// plots and the percentile distributions there.
func runLatency(ctx context.Context, env *bench.Env, lr latencyRun) error {
	began := time.Now()
	rows := bench.LatencyRows()
	var results []bench.LatencyResult
	maxRates, consumeOnlyRates := map[int]float64{}, map[int]float64{}
	for _, size := range lr.sizes {
		// The raw consumer's maximum with the publisher beside it (see
		// bench.MeasureCapacity), and without (the router operation's
		// baseline trial), which is reported for comparison.
		var rates, consumeOnly []float64
		raw := bench.VariantsOf(bench.OpRouter)[0]
		for range max(3, lr.rounds) {
			c, err := bench.MeasureCapacity(ctx, env, bench.LatencyRaw, size, lr.capacityN)
			if err != nil {
				return err
			}
			rates = append(rates, c)
			r, err := bench.Measure(ctx, env, raw, bench.Params{N: lr.n, Size: size})
			if err != nil {
				return err
			}
			consumeOnly = append(consumeOnly, r.MsgsPerSec())
		}
		slices.Sort(consumeOnly)
		consumeOnlyRates[size] = consumeOnly[len(consumeOnly)/2]
		slices.Sort(rates)
		maxRate := rates[len(rates)/2]
		maxRates[size] = maxRate
		fmt.Fprintf(os.Stderr, "latency: raw consumer maximum at %d B with the publisher beside it: %.0f events/s (trials %.0f); consume only: %.0f\n", size, maxRate, rates, consumeOnlyRates[size])
		for _, load := range lr.loads {
			rate := load * maxRate
			for round := range lr.rounds {
				for i := range rows {
					row := rows[(i+round)%len(rows)]
					r, err := bench.MeasureLatency(ctx, env, row, bench.LatencyParams{Rate: rate, Duration: lr.duration, Size: size})
					if err != nil {
						return err
					}
					r.Load = load
					fmt.Fprintf(os.Stderr, "latency: %-24s %5d B %3.0f%% %7.0f/s  p50 %8s  p99 %8s  p99.9 %8s  max %8s\n", row, size, 100*load, rate,
						r.Percentile(50), r.Percentile(99), r.Percentile(99.9), r.Max())
					results = append(results, r)
				}
			}
		}
	}
	sums := bench.MergeLatency(results)
	fmt.Printf("\nLatency under load: open-loop publisher (raw nats.go async publish, own connection), %s per row, load and round after a %s warm-up not recorded, %d round(s) (row order rotated), each percentile the median round's; latency from each event's due time to its handler's entry; took %s.\n",
		lr.duration, min(lr.duration/5, time.Second), lr.rounds, time.Since(began).Round(time.Second))
	for _, size := range lr.sizes {
		fmt.Printf("Raw consumer maximum at %s: %.0f events/s with the publisher beside it on the same 2 cores (100 %% load; median of %d trials of %d events); %.0f events/s consuming a pre-filled stream alone.\n",
			sizeName(size), maxRates[size], max(3, lr.rounds), lr.capacityN, consumeOnlyRates[size])
	}
	fmt.Println()
	if err := bench.WriteLatencyTable(os.Stdout, sums); err != nil {
		return err
	}
	if lr.out == "" {
		return nil
	}
	if err := os.MkdirAll(lr.out, 0o755); err != nil {
		return err
	}
	var written []string
	for _, size := range lr.sizes {
		for _, q := range []float64{50, 99} {
			name := fmt.Sprintf("latency-p%.0f.svg", q)
			if len(lr.sizes) > 1 {
				name = fmt.Sprintf("latency-%d-p%.0f.svg", size, q)
			}
			path := filepath.Join(lr.out, name)
			if err := writeFile(path, func(f *os.File) error { return bench.WriteLatencySVG(f, sums, size, q) }); err != nil {
				return err
			}
			written = append(written, path)
		}
	}
	path := filepath.Join(lr.out, "latency-distributions.txt")
	if err := writeFile(path, func(f *os.File) error { return bench.WriteLatencyDistributions(f, sums) }); err != nil {
		return err
	}
	written = append(written, path)
	fmt.Printf("\nWritten: %v\n", written)
	return nil
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(write(f), f.Close())
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
