// Command jetevents-bench measures jetevents' publisher and subscriber side by
// side with raw nats.go jetstream code and watermill-nats' pkg/jetstream, all
// in one run against one embedded JetStream server (file store in a temporary
// directory), and prints a markdown table with the ratio of each to raw.
//
//	go run ./cmd/jetevents-bench [-n 20000] [-size 512,4096] [-window 4096]
//	    [-batch 100] [-rounds 1] [-warmup 1000] [-ops sync,async,batch,consume]
//
// After a short unmeasured warm-up trial of every variant, the variants of
// one operation and size run one after the other (round by round when
// -rounds > 1, each round starting with the next variant, reporting the
// median), so that drift on a busy machine hits them alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
		ops    = flag.String("ops", "sync,async,batch,consume", "operations to measure, comma-separated")
	)
	flag.Parse()
	sz, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	opList, err := parseOps(*ops)
	if err != nil {
		return err
	}
	if *n <= 0 || *window <= 0 || *batch <= 0 || *rounds <= 0 {
		return fmt.Errorf("-n, -window, -batch and -rounds must be positive")
	}

	env, err := bench.Start("")
	if err != nil {
		return err
	}
	defer env.Close()

	ctx := context.Background()
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
					fmt.Fprintf(os.Stderr, "%-24s %5d B  %8.0f msgs/s\n", v.Name(), size, r.MsgsPerSec())
					results = append(results, r)
				}
			}
		}
	}

	fmt.Printf("Machine: %s\n\n", bench.ThisMachine())
	fmt.Printf("%d events per trial, async window %d, batch %d, median of %d round(s); took %s.\n\n",
		*n, *window, *batch, *rounds, time.Since(began).Round(time.Second))
	if err := bench.WriteTable(os.Stdout, bench.Median(results)); err != nil {
		return err
	}
	fmt.Println()
	for _, op := range opList {
		for _, v := range bench.VariantsOf(op) {
			fmt.Printf("- %s: %s\n", v.Name(), v.What)
		}
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
