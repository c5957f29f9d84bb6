package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo_runs_end_to_end runs `make demo` in-process and checks what it
// reports: three events handled, two dead letters with their reasons.
func TestDemo_runs_end_to_end(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out), out.String())
	s := out.String()
	for _, want := range []string{
		"user.created  user_id=12345 email=user@example.com  correlation=demo-request-1",
		`"timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":{"email":"user@example.com","role":"admin","user_id":12345}`,
		"user.role.updated user_id=12345 admin -> viewer",
		"user.deleted",
		"reason=permanent",
		"reason=unmarshal",
		"router stopped cleanly: handled=3",
	} {
		assert.Contains(t, s, want)
	}
	assert.Equal(t, 2, strings.Count(s, "dlq.auth.user.created"), s)
}
