package bench_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

func TestSoak_samples_before_the_first_event_and_after_every_chunk(t *testing.T) {
	var samples []bench.SoakSample
	// 250 in chunks of 100: a short last chunk is sampled too.
	// This process stands in for the server's: its RSS is sampled twice.
	err := bench.Soak(context.Background(), env, bench.SoakParams{N: 250, Every: 100, ChunkTimeout: 30 * time.Second, ServerPID: os.Getpid()},
		func(s bench.SoakSample) { samples = append(samples, s) })
	require.NoError(t, err)
	require.Len(t, samples, 4)
	for i, want := range []int{0, 100, 200, 250} {
		assert.Equal(t, want, samples[i].Events, "sample %d", i)
		assert.Positive(t, samples[i].Goroutines)
		assert.Positive(t, samples[i].HeapInuse)
		if runtime.GOOS == "linux" {
			assert.Positive(t, samples[i].RSS)
			assert.Positive(t, samples[i].ServerRSS)
		}
		if i > 0 {
			assert.Positive(t, samples[i].Chunk)
		}
	}
}

func TestSoakTable_rows_in_MiB(t *testing.T) {
	var b strings.Builder
	require.NoError(t, bench.WriteSoakHeader(&b))
	require.NoError(t, bench.WriteSoakRow(&b, bench.SoakSample{Events: 100000, RSS: 27 << 20, HeapInuse: 3 << 19, Goroutines: 42, ServerRSS: 90 << 20, Chunk: 1500 * time.Millisecond}))
	require.NoError(t, bench.WriteSoakRow(&b, bench.SoakSample{}))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "| 100000 | 27.0 | 1.5 | 42 | 90.0 | 1.5s |", lines[2])
	assert.Equal(t, "| 0 | n/a | 0.0 | 0 | n/a |  |", lines[3])
}

func TestParseStatm_reads_resident_pages_as_bytes(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    uint64
		wantErr bool
	}{
		{name: "resident is the second field", line: "163840 6912 1234 300 0 20000 0\n", want: 6912 * 4096},
		{name: "one field", line: "163840", wantErr: true},
		{name: "not a number", line: "163840 x 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseStatm(tt.line, 4096)
			if tt.wantErr {
				require.Error(t, err)
				assert.True(t, errors.Is(err, bench.ErrNoRSS), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
