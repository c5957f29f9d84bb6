package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

// BenchmarkRouterObservability is the router-default row (metrics and
// tracing off) beside the same router with metrics, tracing, or both on:
//
//	go test -run '^$' -bench RouterObservability -count 6 ./bench/ | benchstat -col /impl -
func BenchmarkRouterObservability(b *testing.B) {
	for _, size := range sizes {
		for _, v := range bench.ObservabilityVariants() {
			b.Run(fmt.Sprintf("size=%d/impl=%s", size, v.Impl), func(b *testing.B) {
				runTrial(b, v, bench.Params{N: b.N, Size: size})
			})
		}
	}
}

func TestObservabilityVariants_consume_every_event(t *testing.T) {
	const n = 250
	for _, v := range bench.ObservabilityVariants() {
		t.Run(v.Name(), func(t *testing.T) {
			ctx := context.Background()
			trial, err := v.Prepare(ctx, env, bench.Params{N: n, Size: 512, Timeout: 20 * time.Second})
			require.NoError(t, err)
			defer func() { require.NoError(t, trial.Close()) }()
			require.NoError(t, trial.Run(ctx))
			require.NoError(t, trial.Verify(ctx))
		})
	}
}
