// Command jetevents-bench measures jetevents' publisher, subscriber and
// router side by side with raw nats.go jetstream code and watermill-nats'
// pkg/jetstream, all in one run against one embedded JetStream server (file
// store in a temporary directory), and prints a markdown table with the ratio
// of each to its operation's raw baseline, the speed targets, CPU time and
// allocations per event.
//
//	go run ./cmd/jetevents-bench [-n 20000] [-size 512,4096] [-window 4096]
//	    [-batch 100] [-rounds 1] [-warmup 1000] [-ops sync,async,batch,consume,router]
//
// After a short unmeasured warm-up trial of every variant, the variants of
// one operation and size run one after the other (round by round when
// -rounds > 1, each round starting with the next variant, reporting the
// median), so that drift on a busy machine hits them alike.
//
//	go run ./cmd/jetevents-bench -soak 1000000 [-soak-every 100000] [-size 512]
//
// runs the router-default row's router over that many events instead, and
// prints the process's RSS, Go heap and goroutines every -soak-every events.
//
//	go run ./cmd/jetevents-bench -ops outbox [-outbox-n 5000] [-outbox-db postgres,sqlite] [-pg-fsync=true]
//
// measures the outbox and inbox (bench.RunOutbox) on PostgreSQL (a throwaway
// cluster, or $PG_URL) and SQLite: a service's transaction and its event
// written as a dual write and through the outbox (commit to stored p50/p99),
// the relay against direct publishing, and an inbox handler against a plain
// one doing the same insert. "outbox" can be listed with the other -ops.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetevents/events/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "jetevents-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		n      = flag.Int("n", 20000, "events per trial")
		sizes  = flag.String("size", "512,4096", "event data sizes in bytes, comma-separated")
		window = flag.Int("window", 4096, "max pending async acks (ours and raw)")
		batch  = flag.Int("batch", 100, "events per batch")
		rounds = flag.Int("rounds", 1, "trials per variant; the median is reported")
		warmup = flag.Int("warmup", 1000, "events per unmeasured warm-up trial of each variant (0: none)")
		ops    = flag.String("ops", "sync,async,batch,consume,router", "operations to measure, comma-separated (also: outbox, latency)")
		latDur = flag.Duration("latency-duration", 10*time.Second, "latency: how long the publisher sends at each load, per row and round")
		latLds = flag.String("latency-loads", "25,50,75,90", "latency: loads in percent of the raw consumer's measured maximum")
		latOut = flag.String("latency-out", "", "latency: directory for the plots and percentile distributions (none if empty)")
		latCap = flag.Int("latency-capacity-n", 300000, "latency: events per trial measuring the raw consumer's maximum with the publisher beside it (long enough to be sustained)")
		obN    = flag.Int("outbox-n", 5000, "events per outbox and inbox row")
		obDBs  = flag.String("outbox-db", "postgres,sqlite", "databases of the outbox and inbox rows")
		pgSync = flag.Bool("pg-fsync", true, "PostgreSQL with fsync and synchronous commit on, as in production")
		soak   = flag.Int("soak", 0, "instead of the table: run the router-default row over this many events, sampling RSS (0: off)")
		every  = flag.Int("soak-every", 100000, "events between two soak samples")
		serve  = flag.Bool("serve", false, "internal (the soak's server process): run the embedded server, print its URL, stop when stdin closes")
	)
	flag.Parse()
	if *serve {
		return serveUntilEOF()
	}
	sz, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	withOutbox, withLatency := false, false
	var others []string
	for _, f := range strings.Split(*ops, ",") {
		switch strings.TrimSpace(f) {
		case "outbox":
			withOutbox = true
			continue
		case "latency":
			withLatency = true
			continue
		}
		others = append(others, f)
	}
	var opList []bench.Op
	if len(others) > 0 {
		if opList, err = parseOps(strings.Join(others, ",")); err != nil {
			return err
		}
	}
	loads, err := parseLoads(*latLds)
	if err != nil {
		return err
	}
	if *latDur <= 0 {
		return fmt.Errorf("-latency-duration must be positive")
	}
	if *obN <= 0 {
		return fmt.Errorf("-outbox-n must be positive")
	}
	if *n <= 0 || *window <= 0 || *batch <= 0 || *rounds <= 0 || *soak < 0 || *every <= 0 {
		return fmt.Errorf("-n, -window, -batch, -rounds and -soak-every must be positive, -soak not negative")
	}

	ctx := context.Background()
	if *soak > 0 {
		return runSoak(ctx, bench.SoakParams{N: *soak, Every: *every, Size: sz[0], Window: *window})
	}
	env, err := bench.Start("")
	if err != nil {
		return err
	}
	defer env.Close()
	began := time.Now()
	if *warmup > 0 {
		// One short trial of each variant first, so that the first measured
		// variant does not pay for the process's and server's warm-up
		// (heap growth, first store files, connection setup paths).
		for _, op := range opList {
			for _, v := range bench.VariantsOf(op) {
				p := bench.Params{N: *warmup, Size: sz[0], Window: *window, Batch: *batch}
				if _, err := bench.Measure(ctx, env, v, p); err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
			}
		}
	}
	var results []bench.Result
	for _, op := range opList {
		for _, size := range sz {
			variants := bench.VariantsOf(op)
			for round := range *rounds {
				// Each round starts with another variant, so that none is
				// always first or always right after a given other one.
				for i := range variants {
					v := variants[(i+round)%len(variants)]
					p := bench.Params{N: *n, Size: size, Window: *window, Batch: *batch}
					r, err := bench.Measure(ctx, env, v, p)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "%-30s %5d B  %8.0f msgs/s\n", v.Name(), size, r.MsgsPerSec())
					results = append(results, r)
				}
			}
		}
	}

	fmt.Printf("Machine: %s\n\n", bench.ThisMachine())
	if len(opList) > 0 {
		fmt.Printf("%d events per trial, async window %d, batch %d, median of %d round(s); took %s.\n\n",
			*n, *window, *batch, *rounds, time.Since(began).Round(time.Second))
	}
	if slices.Contains(opList, bench.OpRouter) {
		// The ceiling of the conc8-sleep1ms rows on this machine, now.
		d := bench.SleepCost(200)
		fmt.Printf("time.Sleep(1ms) takes %s here: 8 such handlers reach at most %.0f events/s.\n\n",
			d.Round(time.Microsecond), 8/d.Seconds())
	}
	if len(results) > 0 {
		if err := bench.WriteTable(os.Stdout, bench.Median(results)); err != nil {
			return err
		}
		fmt.Println()
		for _, op := range opList {
			for _, v := range bench.VariantsOf(op) {
				fmt.Printf("- %s: %s\n", v.Name(), v.What)
			}
		}
	}
	if withLatency {
		if *latCap <= 0 {
			return fmt.Errorf("-latency-capacity-n must be positive")
		}
		if err := runLatency(ctx, env, latencyRun{sizes: sz, rounds: *rounds, n: *n, capacityN: *latCap, loads: loads, duration: *latDur, out: *latOut}); err != nil {
			return err
		}
	}
	if withOutbox {
		obResults, err := bench.RunOutbox(ctx, env, bench.OutboxParams{N: *obN, Databases: strings.Split(*obDBs, ","), PGFsync: *pgSync, Rounds: *rounds, Log: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Printf("\nOutbox and inbox: %d events per row, PostgreSQL fsync %v, SQLite WAL, median of %d round(s).\n\n", *obN, *pgSync, *rounds)
		if err := bench.WriteOutboxTable(os.Stdout, obResults); err != nil {
			return err
		}
	}
	return nil
}

// serveUntilEOF is the soak's server process: the embedded server (temporary
// store), its URL on stdout, shut down when the parent closes stdin or dies.
func serveUntilEOF() error {
	srv, err := bench.StartServer("")
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Println(srv.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// startServerProcess runs this binary with -serve and returns the server's
// URL, its pid and a stop that closes its stdin and waits for it.
func startServerProcess() (url string, pid int, stop func() error, err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(exe, "-serve")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", 0, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() error {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill() // the process this function started, by its handle
			return fmt.Errorf("server process %d did not stop; killed", cmd.Process.Pid)
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return "", 0, nil, errors.Join(fmt.Errorf("server process: %w", err), stop())
	}
	return strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}

// runSoak runs the soak against a server in a process of its own, so that
// this process's RSS is the router's (and its feeding publisher's), and
// prints the soak table row by row, then how the RSS moved after the first
// chunk (the first sample is taken before the router handled anything, so it
// misses the steady-state buffers).
func runSoak(ctx context.Context, p bench.SoakParams) (err error) {
	url, pid, stop, err := startServerProcess()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stop()) }()
	env, err := bench.Dial(url)
	if err != nil {
		return err
	}
	defer env.Close()
	p.ServerPID = pid

	fmt.Printf("Machine: %s\n\n", bench.ThisMachine())
	fmt.Printf("Soak: router-default, %d events of %d B, sampled every %d. RSS (/proc/self/statm) is this process's: the router and the publisher feeding it; the server runs in process %d.\n\n", p.N, p.Size, p.Every, pid)
	if err := bench.WriteSoakHeader(os.Stdout); err != nil {
		return err
	}
	var samples []bench.SoakSample
	began := time.Now()
	err = bench.Soak(ctx, env, p, func(s bench.SoakSample) {
		samples = append(samples, s)
		_ = bench.WriteSoakRow(os.Stdout, s)
	})
	if err != nil {
		return err
	}
	if len(samples) >= 3 {
		first, last := samples[1], samples[len(samples)-1]
		peak := first.RSS
		for _, s := range samples[1:] {
			peak = max(peak, s.RSS)
		}
		const mib = 1 << 20
		fmt.Printf("\nRSS after %d events %.1f MiB, after %d events %.1f MiB (%+.1f MiB), peak %.1f MiB; goroutines %d -> %d; took %s.\n",
			first.Events, float64(first.RSS)/mib, last.Events, float64(last.RSS)/mib, (float64(last.RSS)-float64(first.RSS))/mib,
			float64(peak)/mib, first.Goroutines, last.Goroutines, time.Since(began).Round(time.Second))
	}
	return nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-size: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseOps(s string) ([]bench.Op, error) {
	var out []bench.Op
	for _, f := range strings.Split(s, ",") {
		op := bench.Op(strings.TrimSpace(f))
		known := false
		for _, o := range bench.Ops {
			known = known || o == op
		}
		if !known {
			return nil, fmt.Errorf("-ops: unknown operation %q (want %v)", op, bench.Ops)
		}
		out = append(out, op)
	}
	return out, nil
}

func parseLoads(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 200 {
			return nil, fmt.Errorf("-latency-loads: %q is not a percentage in (0, 200]", f)
		}
		out = append(out, v/100)
	}
	return out, nil
}
