package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Result is one measured trial.
type Result struct {
	Op   Op
	Impl Impl
	// Size is the event data size in bytes.
	Size int
	// N is the number of events handled.
	N int
	// Elapsed is the duration of the measured run.
	Elapsed time.Duration
	// CPU is the process CPU time (client and embedded server) the run used;
	// less sensitive than Elapsed to other processes on a busy machine.
	CPU time.Duration
	// Mallocs is the number of heap allocations made during the run
	// (runtime.MemStats.Mallocs delta), process-wide: client and embedded
	// server alike, for every row.
	Mallocs uint64
}

// CPUPerMsg is the process CPU time per event, server included.
func (r Result) CPUPerMsg() time.Duration { return r.CPU / time.Duration(max(r.N, 1)) }

// AllocsPerMsg is the heap allocations per event, server included.
func (r Result) AllocsPerMsg() float64 { return float64(r.Mallocs) / float64(max(r.N, 1)) }

// MsgsPerSec is events per second.
func (r Result) MsgsPerSec() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// MBPerSec is event data per second in MB (10^6 bytes), as Go benchmarks count.
func (r Result) MBPerSec() float64 { return r.MsgsPerSec() * float64(r.Size) / 1e6 }

// Measure prepares, runs, verifies and closes one trial of v. Only the run is
// timed; a trial that fails its verification yields an error, not a number.
func Measure(ctx context.Context, env *Env, v Variant, p Params) (Result, error) {
	p.setDefaults()
	t, err := v.Prepare(ctx, env, p)
	if err != nil {
		return Result{}, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	cpu0, start := ProcessCPU(), time.Now()
	err = t.Run(ctx)
	elapsed, cpu := time.Since(start), ProcessCPU()-cpu0
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs - mallocs0
	if err == nil {
		err = t.Verify(ctx)
	}
	if cerr := t.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s size %d: %w", v.Name(), p.Size, err)
	}
	return Result{Op: v.Op, Impl: v.Impl, Size: p.Size, N: p.N, Elapsed: elapsed, CPU: cpu, Mallocs: mallocs}, nil
}

// Target is a minimum a row is held to: its msgs/s over the msgs/s of
// another row of the same operation and size (Of), or, when Of is empty,
// over an ideal rate (Ideal events/s).
type Target struct {
	Op   Op
	Impl Impl
	// Size restricts the target to one data size; 0: every size.
	Size int
	// Min is the minimum ratio; 0 makes the target informational (the
	// ratio is shown, with no verdict).
	Min float64
	// Of is the row compared with; empty: Ideal.
	Of Impl
	// Ideal is the events/s without any overhead, when Of is empty.
	Ideal float64
}

// Targets are the issues' speed targets: the publisher's against raw
// nats.go, and the router's (issue 7; KV idempotency: issue 21) against a
// user's hand-written consumer
// (raw-consume-json), against watermill-nats' router, and against the ideal
// rate of 8 handlers sleeping 1 ms (which raw-conc8-sleep1ms shows, without
// a verdict, for the same handlers without the router).
var Targets = []Target{
	{Op: OpSync, Impl: ImplJetevents, Min: 0.9, Of: ImplRaw},
	{Op: OpAsync, Impl: ImplJetevents, Min: 0.8, Of: ImplRaw},
	{Op: OpBatch, Impl: ImplJetevents, Min: 0.8, Of: ImplRaw},
	{Op: OpRouter, Impl: ImplRouterDefault, Size: 512, Min: 0.7, Of: ImplRawConsumeJSON},
	{Op: OpRouter, Impl: ImplRouterDefault, Size: 4096, Min: 0.85, Of: ImplRawConsumeJSON},
	{Op: OpRouter, Impl: ImplRouterDefault, Min: 1.3, Of: ImplWatermillRouter},
	{Op: OpRouter, Impl: ImplRouterKVIdempotency, Size: 512, Min: 0.5, Of: ImplRawConsumeJSON},
	{Op: OpRouter, Impl: ImplRouterKVIdempotency, Size: 4096, Min: 0.85, Of: ImplRawConsumeJSON},
	{Op: OpRouter, Impl: ImplRouterConc8Sleep1ms, Min: 0.9, Ideal: Conc8Sleep1msIdeal},
	{Op: OpRouter, Impl: ImplRawConc8Sleep1ms, Ideal: Conc8Sleep1msIdeal},
}

// verdicts evaluates every target of r against the rows of results:
// ">= 0.7x raw-consume-json: met", ">= 1.3x watermill-nats-router: missed
// (0.52x)", "71% of 8000/s (>= 90%): missed", joined by "; ". A target whose
// row to compare with is missing says so.
func verdicts(r Result, results []Result, targets []Target) string {
	rate := func(impl Impl) (float64, bool) {
		for _, o := range results {
			if o.Op == r.Op && o.Size == r.Size && o.Impl == impl {
				return o.MsgsPerSec(), true
			}
		}
		return 0, false
	}
	var out []string
	for _, t := range targets {
		if t.Op != r.Op || t.Impl != r.Impl || (t.Size != 0 && t.Size != r.Size) {
			continue
		}
		if t.Of == "" {
			got := r.MsgsPerSec() / t.Ideal
			v := fmt.Sprintf("%.0f%% of %.0f/s", 100*got, t.Ideal)
			if t.Min > 0 {
				v += fmt.Sprintf(" (>= %.0f%%): %s", 100*t.Min, metOrMissed(got, t.Min))
			}
			out = append(out, v)
			continue
		}
		base, ok := rate(t.Of)
		if !ok || base <= 0 {
			out = append(out, fmt.Sprintf(">= %.2gx %s: n/a (no %s row)", t.Min, t.Of, t.Of))
			continue
		}
		got := r.MsgsPerSec() / base
		v := fmt.Sprintf(">= %.2gx %s: %s", t.Min, t.Of, metOrMissed(got, t.Min))
		if t.Of != Baseline(r.Op) { // the vs-baseline column does not show this ratio
			v += fmt.Sprintf(" (%.2fx)", got)
		}
		out = append(out, v)
	}
	return strings.Join(out, "; ")
}

func metOrMissed(got, minimum float64) string {
	if got >= minimum {
		return "met"
	}
	return "missed"
}

// Median reduces repeated results of the same op, impl and size to the one
// with the median throughput, keeping the first-seen order.
func Median(results []Result) []Result {
	type key struct {
		op   Op
		impl Impl
		size int
	}
	groups := map[key][]Result{}
	var order []key
	for _, r := range results {
		k := key{r.Op, r.Impl, r.Size}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g, func(a, b Result) int {
			switch x, y := a.MsgsPerSec(), b.MsgsPerSec(); {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		})
		out = append(out, g[len(g)/2])
	}
	return out
}

// WriteTable writes results as a markdown table: one row per result, with
// its throughput relative to its operation's baseline (see Baseline) at the
// same size, the Targets it is held to, CPU time and allocations per event.
func WriteTable(w io.Writer, results []Result) error {
	type key struct {
		op   Op
		size int
	}
	base := map[key]float64{}
	for _, r := range results {
		if r.Impl == Baseline(r.Op) {
			base[key{r.Op, r.Size}] = r.MsgsPerSec()
		}
	}
	var b strings.Builder
	b.WriteString("| operation | variant | data size | msgs/s | MB/s | vs baseline | target | CPU µs/msg | allocs/msg |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
	for _, r := range results {
		ratio := "n/a"
		if bl, ok := base[key{r.Op, r.Size}]; ok && bl > 0 {
			ratio = fmt.Sprintf("%.2fx", r.MsgsPerSec()/bl)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.1f | %s | %s | %.1f | %.1f |\n",
			r.Op, r.Impl, formatSize(r.Size), r.MsgsPerSec(), r.MBPerSec(), ratio, verdicts(r, results, Targets),
			float64(r.CPUPerMsg())/float64(time.Microsecond), r.AllocsPerMsg())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// Machine describes where a run happened.
type Machine struct {
	CPUs      int
	GOOS      string
	GOARCH    string
	GoVersion string
	// CPUModel is /proc/cpuinfo's "model name" ("unknown" elsewhere).
	CPUModel string
}

// ThisMachine describes the current machine.
func ThisMachine() Machine {
	return Machine{
		CPUs:      runtime.NumCPU(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		GoVersion: runtime.Version(),
		CPUModel:  cpuModel("/proc/cpuinfo"),
	}
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s", m.CPUModel, m.CPUs, m.GOOS, m.GOARCH, m.GoVersion)
}

func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
