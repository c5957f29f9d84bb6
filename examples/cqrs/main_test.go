package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example runs the same service on both transports and reports the same
// story: the sign-up handled, the role published through the CQRS bus and
// audited in the sign-up's conversation, the welcome mail retried once.
func TestCQRSExample_tells_the_same_story_on_both_transports(t *testing.T) {
	for _, tt := range []struct {
		name     string
		onMemory bool
	}{{"embedded JetStream", false}, {"memory bus", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			require.NoError(t, run(ctx, &out, tt.onMemory), out.String())
			s := out.String()
			for _, want := range []string{
				"roles:   user.created user_id=12345 on auth.user.created, correlation=signup-request-1",
				"welcome: attempt 1 to mail user@example.com failed (smtp busy), retried by the broker",
				"welcome: attempt 2 mailed user@example.com",
				"audit:   user.role.assigned user_id=12345 role=member on auth.user.role.assigned, correlation=signup-request-1, caused by the user.created event: true",
				"router: handled=3 retried=1 dead_lettered=0",
			} {
				assert.Contains(t, s, want)
			}
		})
	}
}
