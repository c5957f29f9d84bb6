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
}

// CPUPerMsg is the process CPU time per event, server included.
func (r Result) CPUPerMsg() time.Duration { return r.CPU / time.Duration(max(r.N, 1)) }

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
	cpu0, start := ProcessCPU(), time.Now()
	err = t.Run(ctx)
	elapsed, cpu := time.Since(start), ProcessCPU()-cpu0
	if err == nil {
		err = t.Verify(ctx)
	}
	if cerr := t.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return Result{}, fmt.Errorf("bench: %s size %d: %w", v.Name(), p.Size, err)
	}
	return Result{Op: v.Op, Impl: v.Impl, Size: p.Size, N: p.N, Elapsed: elapsed, CPU: cpu}, nil
}

// Target is the minimum ratio of ours to the raw baseline per
// operation.
var Target = map[Op]float64{OpSync: 0.9, OpAsync: 0.8, OpBatch: 0.8, OpConsume: 0.7}

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
// its throughput relative to the raw result of the same operation and size,
// and for ours the target.
func WriteTable(w io.Writer, results []Result) error {
	type key struct {
		op   Op
		size int
	}
	raw := map[key]float64{}
	for _, r := range results {
		if r.Impl == ImplRaw {
			raw[key{r.Op, r.Size}] = r.MsgsPerSec()
		}
	}
	var b strings.Builder
	b.WriteString("| operation | variant | data size | msgs/s | MB/s | vs raw | target | CPU µs/msg |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |\n")
	for _, r := range results {
		ratio := "n/a"
		if base, ok := raw[key{r.Op, r.Size}]; ok && base > 0 {
			ratio = fmt.Sprintf("%.2fx", r.MsgsPerSec()/base)
		}
		target := ""
		if r.Impl == ImplJetevents {
			if t, ok := Target[r.Op]; ok {
				verdict := "missed"
				if base, ok := raw[key{r.Op, r.Size}]; ok && r.MsgsPerSec()/base >= t {
					verdict = "met"
				}
				target = fmt.Sprintf(">= %.1fx: %s", t, verdict)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.1f | %s | %s | %.1f |\n",
			r.Op, r.Impl, formatSize(r.Size), r.MsgsPerSec(), r.MBPerSec(), ratio, target, float64(r.CPUPerMsg())/float64(time.Microsecond))
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
