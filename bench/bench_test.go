package bench_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jetevents/events/bench"
)

// Sizes are the event data sizes every benchmark runs at.
var sizes = []int{512, 4096}

// Every benchmark is named Benchmark<Op>/size=<bytes>/impl=<impl>, the raw
// baseline first, so `benchstat -col /impl` puts the implementations side by
// side with the ratio to raw. b.N is the number of events; b.SetBytes is the
// event data size, so MB/s is event data per second.

func BenchmarkPublishSync(b *testing.B)  { benchOp(b, bench.OpSync) }
func BenchmarkPublishAsync(b *testing.B) { benchOp(b, bench.OpAsync) }
func BenchmarkPublishBatch(b *testing.B) { benchOp(b, bench.OpBatch) }
func BenchmarkConsumeAck(b *testing.B)   { benchOp(b, bench.OpConsume) }

// BenchmarkRouterE2E is the router with its default config beside a user's
// hand-written consumer (raw-consume-json), end to end: b.N events stored
// beforehand, timed until the handler has seen the last. allocs/op is per
// event, process-wide (client and embedded server).
func BenchmarkRouterE2E(b *testing.B) {
	benchOp(b, bench.OpRouter, bench.ImplRawConsumeJSON, bench.ImplRouterDefault)
}

// BenchmarkRouterKVIdempotency is the router with Config.Idempotency a
// jetstream.KVStore (fresh bucket per trial) beside the same hand-written
// consumer: what issue 21's "idempotency at half of raw" is measured by.
func BenchmarkRouterKVIdempotency(b *testing.B) {
	benchOp(b, bench.OpRouter, bench.ImplRawConsumeJSON, bench.ImplRouterKVIdempotency)
}

// benchOp runs the variants of op (only the impls listed, if any).
func benchOp(b *testing.B, op bench.Op, impls ...bench.Impl) {
	for _, size := range sizes {
		for _, v := range bench.VariantsOf(op) {
			if len(impls) > 0 && !slices.Contains(impls, v.Impl) {
				continue
			}
			b.Run(fmt.Sprintf("size=%d/impl=%s", size, v.Impl), func(b *testing.B) {
				runTrial(b, v, bench.Params{N: b.N, Size: size})
			})
		}
	}
}

// runTrial measures one trial of b.N events: only Run is timed; the trial is
// verified (every event stored or consumed) before its numbers count.
func runTrial(b *testing.B, v bench.Variant, p bench.Params) {
	ctx := context.Background()
	b.StopTimer()
	t, err := v.Prepare(ctx, env, p)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := t.Close(); err != nil {
			b.Error(err)
		}
	}()
	b.SetBytes(int64(p.Size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := bench.ProcessCPU()
	b.StartTimer()
	err = t.Run(ctx)
	b.StopTimer()
	// Process CPU (client + embedded server) per event: steadier than ns/op
	// when other processes compete for the cores.
	b.ReportMetric(float64(bench.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if err != nil {
		b.Fatal(err)
	}
	if err := t.Verify(ctx); err != nil {
		b.Fatal(err)
	}
}
