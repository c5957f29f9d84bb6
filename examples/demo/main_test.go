package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo_runs_end_to_end runs `make demo` in-process and checks what it
// reports: three events handled, one of them after two broker-side retries
// on the backoff schedule, two dead letters (one refused by its handler,
// one undecodable), and counts that add up to what was published and agree
// with the router's; then the outbox step: the resource committed with its
// event, the rolled-back one in neither the database nor the stream.
func TestDemo_runs_end_to_end(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out), out.String())
	s := out.String()
	for _, want := range []string{
		"handled user.created  user_id=12345 email=user@example.com  correlation=demo-request-1",
		`"timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0","data":{"email":"user@example.com","role":"admin","user_id":12345}`,
		"retry   user.role.updated attempt 1, first delivery: failed (directory service busy); the broker redelivers it in 100ms",
		"handled user.deleted",
		"reason=permanent (refused by its handler)",
		"reason=unmarshal (undecodable: not an event)",
		"Every message accounted for: 5 published = 3 handled + 2 dead-lettered (1 refused by its handler, 1 undecodable);",
		"on the way 2 deliveries failed and were retried.",
		"The router's own counts: handled=3 retried=2 dead_lettered=2 undecodable=1 handler_errors=3 (2 retried + 1 refused)",
		// The outbox: a committed resource and its event; a rolled-back one in neither.
		"committed:   resource res-org-123 and its resource.created event, in one transaction (1 event waiting in the outbox)",
		"rolled back: resource res-org-456 and its event, in one transaction",
		"relay published: my-service.resource.created seq 1  type=resource.created",
		"resource_id=res-org-123 (Nats-Msg-Id = event id)",
		"resources table: [res-org-123]; MY_SERVICE holds 1 event; outbox pending: 0. Rolled back, res-org-456 is in neither.",
	} {
		assert.Contains(t, s, want)
	}
	// The retried event: each redelivery after its backoff, then handled.
	assert.Regexp(t, `retry   user.role.updated attempt 2, \d+ms after attempt 1 \(backoff 100ms\): failed \(directory service busy\); the broker redelivers it in 200ms`, s)
	assert.Regexp(t, `handled user.role.updated attempt 3, \d+ms after attempt 2 \(backoff 200ms\), \d+ms after the first: user_id=12345 admin -> viewer`, s)
	attempts := regexp.MustCompile(`user.role.updated attempt (\d)`).FindAllStringSubmatch(s, -1)
	require.Len(t, attempts, 3, s)
	for i, m := range attempts {
		assert.Equal(t, string(rune('1'+i)), m[1], "attempts in order")
	}
	assert.Equal(t, 2, strings.Count(s, "dlq.auth.user.created"), s)
}
