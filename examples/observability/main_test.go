package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExample_serves_metrics_after_its_traffic scrapes the example's
// /metrics (httptest) after its traffic and checks the counts it must show.
func TestExample_serves_metrics_after_its_traffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ex, err := start(ctx)
	require.NoError(t, err)
	defer ex.close()
	ts := httptest.NewServer(ex.handler())
	defer ts.Close()

	require.NoError(t, ex.traffic(ctx))
	body, err := scrape(ctx, ts.URL+"/metrics")
	require.NoError(t, err)
	for _, want := range []string{
		`jetevents_deliveries_total{group="accounts",outcome="handled",reason="",service="auth",type="user.created"} 2`,
		`jetevents_deliveries_total{group="accounts",outcome="dead_lettered",reason="permanent",service="auth",type="user.deleted"} 1`,
		`jetevents_deliveries_total{group="mailer",outcome="handled",reason="",service="auth",type="user.welcomed"} 2`,
		`jetevents_events_published_total{result="ok",service="auth",subject="auth.user.created"} 2`,
		`jetevents_events_published_total{result="ok",service="auth",subject="auth.user.welcomed"} 2`,
		`jetevents_dead_letter_messages{service="auth",stream="DLQ"} 1`,
		`jetevents_consumer_pending{group="accounts",service="auth"} 0`,
		`jetevents_consumer_ack_pending{group="mailer",service="auth"} 0`,
		`jetevents_group_up{group="mailer",service="auth"} 1`,
		`jetevents_handler_duration_seconds_count{group="accounts",service="auth",type="user.created"} 2`,
		`jetevents_publish_duration_seconds_count{mode="sync",service="auth"} 5`,
		`jetevents_deliveries_in_flight{group="accounts",service="auth"} 0`,
		"go_goroutines ",
	} {
		assert.Contains(t, body, want)
	}
}

// TestExample_prints_the_metrics_and_each_trace_as_a_tree runs the command
// as `go run` would and checks the trace trees it prints: the signup's five
// spans nested publish -> process -> publish -> process, and the refused
// event's delivery marked dead-lettered.
func TestExample_prints_the_metrics_and_each_trace_as_a_tree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, "127.0.0.1:0", false), out.String())
	s := out.String()
	assert.Contains(t, s, "serving http://127.0.0.1:")
	assert.Contains(t, s, `jetevents_dead_letter_messages{service="auth",stream="DLQ"} 1`)
	signup := strings.Join([]string{
		"  POST /signup [internal]",
		"    publish auth.user.created [producer]",
		"      process auth.user.created [consumer] group=accounts attempt=1 outcome=handled",
		"        publish auth.user.welcomed [producer]",
		"          process auth.user.welcomed [consumer] group=mailer attempt=1 outcome=handled",
	}, "\n")
	assert.Equal(t, 2, strings.Count(s, signup), "two signups, each one trace of five spans:\n%s", s)
	assert.Contains(t, s, strings.Join([]string{
		"  publish auth.user.deleted [producer]",
		"    process auth.user.deleted [consumer] group=accounts attempt=1 outcome=dead_lettered reason=permanent status=Error",
	}, "\n"))
	assert.Equal(t, 3, strings.Count(s, "trace "), "three traces")
}
