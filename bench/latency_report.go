package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// LatencyGoal is issue 21's latency goal: the default router's p99 at most
// this many times the raw consumer's, at LatencyGoalLoads.
const LatencyGoal = 1.25

// LatencyGoalLoads are the loads (fractions of the raw consumer's maximum)
// the goal is checked at.
var LatencyGoalLoads = []float64{0.50, 0.75}

// LatencySummary is one row at one rate over its rounds. Its Latency and
// SendLag histograms hold every round's events (the distributions file);
// Percentile and Max are the median round's, so that one round disturbed by
// other work on a shared machine does not make the row's numbers.
type LatencySummary struct {
	LatencyResult
	// RoundP99 is each round's p99, in round order (their spread shows the
	// noise).
	RoundP99 []time.Duration
	rounds   []LatencyResult
}

// Percentile is the median over the rounds of each round's latency at
// percentile q (0..100).
func (s LatencySummary) Percentile(q float64) time.Duration {
	return s.median(func(r LatencyResult) time.Duration { return r.Percentile(q) })
}

// Max is the median over the rounds of each round's highest latency.
func (s LatencySummary) Max() time.Duration {
	return s.median(func(r LatencyResult) time.Duration { return r.Max() })
}

func (s LatencySummary) median(of func(LatencyResult) time.Duration) time.Duration {
	if len(s.rounds) == 0 {
		return 0
	}
	vs := make([]time.Duration, len(s.rounds))
	for i, r := range s.rounds {
		vs[i] = of(r)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// MergeLatency gathers the rounds of each row and rate (their histograms
// added for the distributions), in first-seen order.
func MergeLatency(results []LatencyResult) []LatencySummary {
	type key struct {
		row  LatencyRow
		size int
		rate float64
	}
	idx := map[key]int{}
	var out []LatencySummary
	for _, r := range results {
		k := key{r.Row, r.Size, r.Rate}
		i, ok := idx[k]
		if !ok {
			m := r
			m.Latency, m.SendLag = NewLatencyHistogram(), NewLatencyHistogram()
			m.Sent, m.Recorded, m.Elapsed, m.Behind = 0, 0, 0, 0
			idx[k] = len(out)
			out = append(out, LatencySummary{LatencyResult: m})
			i = len(out) - 1
		}
		s := &out[i]
		s.Latency.Merge(r.Latency)
		s.SendLag.Merge(r.SendLag)
		s.Sent += r.Sent
		s.Recorded += r.Recorded
		s.Elapsed += r.Elapsed
		s.Behind = max(s.Behind, r.Behind)
		s.RoundP99 = append(s.RoundP99, r.Percentile(99))
		s.rounds = append(s.rounds, r)
	}
	return out
}

// fmtLatency prints a latency in ms with three significant digits.
func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.3f", ms)
}

// WriteLatencyTable writes the rows as a markdown table, one line per load
// and row, the raw consumer's first: p50, p99, p99.9 and max in ms (each the
// median round's), the p99 relative to the raw consumer's at the same rate, each
// round's p99, and the publisher's own send lag p99 (the part of every
// row's latency spent before the event left the process), and how long
// after the last event's due time it was handled (the worst round): a
// backlog's drain when the row fell behind the rate. The pending rows
// (LatencyPending) get a line saying why they have no numbers; then the
// verdict of LatencyGoal.
func WriteLatencyTable(w io.Writer, sums []LatencySummary) error {
	type key struct {
		size int
		rate float64
	}
	raw := map[key]time.Duration{}
	var rates []key
	for _, s := range sums {
		k := key{s.Size, s.Rate}
		if !slices.Contains(rates, k) {
			rates = append(rates, k)
		}
		if s.Row == LatencyRaw {
			raw[k] = s.Percentile(99)
		}
	}
	var b strings.Builder
	b.WriteString("| load | events/s | data | row | p50 ms | p99 ms | p99.9 ms | max ms | p99 vs raw | p99 per round ms | events recorded | send lag p99 ms | last handled after its due time ms |\n")
	b.WriteString("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, k := range rates {
		for _, s := range sums {
			if s.Size != k.size || s.Rate != k.rate {
				continue
			}
			ratio := "n/a"
			if rp := raw[k]; rp > 0 {
				ratio = fmt.Sprintf("%.2fx", float64(s.Percentile(99))/float64(rp))
			}
			var rounds []string
			for _, d := range s.RoundP99 {
				rounds = append(rounds, fmtLatency(d))
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n",
				fmtLoad(s.Load), s.Rate, formatSize(s.Size), s.Row,
				fmtLatency(s.Percentile(50)), fmtLatency(s.Percentile(99)), fmtLatency(s.Percentile(99.9)), fmtLatency(s.Max()),
				ratio, strings.Join(rounds, " / "), s.Recorded, fmtLatency(time.Duration(s.SendLag.ValueAtPercentile(99))*time.Microsecond), fmtLatency(s.Behind))
		}
		for _, row := range slices.Sorted(mapKeys(LatencyPending)) {
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | - | - | - | - | - | not measured: %s | - | - | - |\n",
				fmtLoad(loadOf(sums, k.size, k.rate)), k.rate, formatSize(k.size), row, LatencyPending[row])
		}
	}
	b.WriteString("\n")
	b.WriteString(LatencyVerdict(sums))
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// LatencyVerdict says, for each goal load and size measured, whether the
// default router's p99 was within LatencyGoal of the raw consumer's.
func LatencyVerdict(sums []LatencySummary) string {
	var lines []string
	for _, s := range sums {
		if s.Row != LatencyRouterDefault || !slices.ContainsFunc(LatencyGoalLoads, func(l float64) bool { return math.Abs(l-s.Load) < 1e-9 }) {
			continue
		}
		for _, r := range sums {
			if r.Row == LatencyRaw && r.Size == s.Size && r.Rate == s.Rate {
				ratio := float64(s.Percentile(99)) / float64(max(r.Percentile(99), time.Microsecond))
				lines = append(lines, fmt.Sprintf("Goal at %s load, %s: router-default p99 %s ms vs raw %s ms = %.2fx (<= %.2fx): %s.",
					fmtLoad(s.Load), formatSize(s.Size), fmtLatency(s.Percentile(99)), fmtLatency(r.Percentile(99)), ratio, LatencyGoal, metOrMissed(LatencyGoal, ratio)))
			}
		}
	}
	return strings.Join(lines, "\n")
}

func fmtLoad(l float64) string {
	if l <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", 100*l)
}

func loadOf(sums []LatencySummary, size int, rate float64) float64 {
	for _, s := range sums {
		if s.Size == size && s.Rate == rate {
			return s.Load
		}
	}
	return 0
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// WriteLatencyDistributions writes each row's full percentile distribution,
// every round's events together (HdrHistogram's percentile output, values in
// ms).
func WriteLatencyDistributions(w io.Writer, sums []LatencySummary) error {
	for _, s := range sums {
		if _, err := fmt.Fprintf(w, "\n# %s, %s, %.0f events/s (%s load), %d events recorded\n", s.Row, formatSize(s.Size), s.Rate, fmtLoad(s.Load), s.Recorded); err != nil {
			return err
		}
		if _, err := s.Latency.PercentilesPrint(w, 5, 1000); err != nil {
			return err
		}
	}
	return nil
}
