package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/bench"
)

// TestRunOutbox_measures_every_row_on_both_databases: every outbox and
// inbox row runs to completion on PostgreSQL and SQLite (each verifies its
// events were stored or handled exactly once) and the table rates each row
// against its operation's baseline on the same database.
func TestRunOutbox_measures_every_row_on_both_databases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, err := bench.RunOutbox(ctx, env, bench.OutboxParams{N: 100, Writers: 2})
	require.NoError(t, err)
	require.Len(t, results, 2*9)
	for _, r := range results {
		assert.Positive(t, r.EventsPerSec(), "%s/%s/%s", r.Op, r.Database, r.Variant)
		if r.Op == "write" {
			assert.Positive(t, r.P50, "%s/%s: a commit-to-stored latency", r.Database, r.Variant)
			assert.GreaterOrEqual(t, r.P99, r.P50)
		}
	}
	var out bytes.Buffer
	require.NoError(t, bench.WriteOutboxTable(&out, results))
	assert.Contains(t, out.String(), "| write | postgres | dual-write | 100 |")
	assert.Contains(t, out.String(), "| inbox | sqlite | inbox | 100 |")
	assert.Regexp(t, `\| relay \| postgres \| direct-sync \| 100 \| \d+ \| 1\.00x \|`, out.String())
}
