package eventstest_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/eventstest"
)

// TestNewPostgres_starts_a_server_with_a_database_per_test: the DSN is a
// working database of its own, a second database is separate, and the
// server accepts SQL (checked with psql, so that the test kit links no
// driver).
func TestNewPostgres_starts_a_server_with_a_database_per_test(t *testing.T) {
	pg := eventstest.NewPostgres(t)
	other := pg.NewDatabase(t)
	require.NotEqual(t, pg.DSN, other)
	for _, dsn := range []string{pg.DSN, other} {
		out, err := exec.Command("psql", "-X", "-q", "-At", "-d", dsn, "-c", "CREATE TABLE t (x int); INSERT INTO t VALUES (42); SELECT x FROM t").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "42", strings.TrimSpace(string(out)))
	}
}
