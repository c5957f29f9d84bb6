package metrics_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/metrics"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// handler behaves as the event's data says: ok, flaky (fails its first
// attempt), permanent (dead-lettered at once), broken (fails every attempt).
func handler(ctx context.Context, e *envelope.Event, d struct{ Mode string }) error {
	switch d.Mode {
	case "flaky":
		if dv, _ := router.DeliveryFrom(ctx); dv.Attempt == 1 {
			return errors.New("flaky: first attempt fails")
		}
	case "permanent":
		return middleware.Permanent(errors.New("cannot be handled"))
	case "broken":
		return errors.New("database unavailable")
	}
	return nil
}

func TestMetrics_count_known_traffic_exactly(t *testing.T) {
	srv := newServer(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{})
	require.NoError(t, err)
	pub, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{m.PublishObserver}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	m.WatchDeadLetters(srv.JS, "DLQ")

	store, err := idempotency.NewMemoryStore(idempotency.MemoryStoreConfig{})
	require.NoError(t, err)
	cfg := fastConfig() // MaxDeliver 3
	cfg.Idempotency = store
	m.Instrument(&cfg)
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	router.Handle(r.Group("users", "auth.user.*"), "user.created", handler)
	m.WatchRouter(r)
	run(t, r)

	// n = 3 handled at once (published async), 1 flaky (1 retry, then
	// handled), k = 2 dead-lettered (1 permanent; 1 broken: 2 retries, then
	// max_deliver), one duplicate copy, one event of an unknown type, one
	// publish to a subject no stream listens on.
	ctx := ctxT(t)
	var oks []*envelope.Event
	for range 3 {
		e := userEvent("user.created", "ok")
		oks = append(oks, e)
		require.NoError(t, pub.PublishAsync(ctx, "auth.user.created", e))
	}
	require.NoError(t, pub.Flush(ctx))
	for _, mode := range []string{"flaky", "permanent", "broken"} {
		require.NoError(t, pub.Publish(ctx, "auth.user.created", userEvent("user.created", mode)))
	}
	storeTwice(t, srv, "auth.user.created", oks[0])
	require.NoError(t, pub.Publish(ctx, "auth.user.deleted", userEvent("user.deleted", "ok")))
	require.ErrorIs(t, pub.Publish(ctx, "orders.placed", userEvent("order.placed", "ok")), transport.ErrNoStream)

	const deliveries = 4 + 3 + 2 + 1 + 1 // handled, retried, dead-lettered, duplicate, unknown
	require.Eventually(t, func() bool {
		return gather(t, reg, "jetevents_deliveries_total").sum() == deliveries &&
			gather(t, reg, "jetevents_dead_letter_messages")["stream=DLQ"] == 2
	}, 20*time.Second, 20*time.Millisecond, "deliveries %v", gather(t, reg, "jetevents_deliveries_total"))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP jetevents_deliveries_total Deliveries handled by the router, by group, event type, outcome (handled, retried, dead_lettered, skipped) and reason (the dead-letter reason; duplicate or unknown_type for skipped).
# TYPE jetevents_deliveries_total counter
jetevents_deliveries_total{group="users",outcome="handled",reason="",type="user.created"} 4
jetevents_deliveries_total{group="users",outcome="retried",reason="",type="user.created"} 3
jetevents_deliveries_total{group="users",outcome="dead_lettered",reason="permanent",type="user.created"} 1
jetevents_deliveries_total{group="users",outcome="dead_lettered",reason="max_deliver",type="user.created"} 1
jetevents_deliveries_total{group="users",outcome="skipped",reason="duplicate",type="user.created"} 1
jetevents_deliveries_total{group="users",outcome="skipped",reason="unknown_type",type="user.deleted"} 1
# HELP jetevents_events_published_total Events published, by subject and result (ok, duplicate, no_stream, timeout, too_large, invalid, not_sent, closed, too_many_pending, error).
# TYPE jetevents_events_published_total counter
jetevents_events_published_total{result="ok",subject="auth.user.created"} 6
jetevents_events_published_total{result="ok",subject="auth.user.deleted"} 1
jetevents_events_published_total{result="no_stream",subject="orders.placed"} 1
# HELP jetevents_dead_letter_messages Messages stored in the dead-letter stream (stream info, read at scrape).
# TYPE jetevents_dead_letter_messages gauge
jetevents_dead_letter_messages{stream="DLQ"} 2
# HELP jetevents_publish_pending Async and batch publishes sent and not yet acked or failed.
# TYPE jetevents_publish_pending gauge
jetevents_publish_pending 0
`), "jetevents_deliveries_total", "jetevents_events_published_total", "jetevents_dead_letter_messages", "jetevents_publish_pending"))

	// Histograms: every delivery whose handler ran (or was dead-lettered),
	// none for the skipped ones; every publish that reached the broker.
	assert.Equal(t, series{"group=users,type=user.created": 4 + 3 + 2}, gather(t, reg, "jetevents_handler_duration_seconds"))
	assert.Equal(t, series{"mode=async": 3, "mode=sync": 5}, gather(t, reg, "jetevents_publish_duration_seconds"))
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_deliveries_in_flight"))

	// Scrape-time consumer state: everything settled.
	require.Eventually(t, func() bool {
		return gather(t, reg, "jetevents_consumer_ack_pending")["group=users"] == 0
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_consumer_pending"))
	assert.Equal(t, series{"group=users": 1}, gather(t, reg, "jetevents_group_up"))
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_group_stalls_total"))
	assert.Empty(t, gather(t, reg, "jetevents_scrape_errors_total"))
}

func TestMetrics_consumer_pending_falls_to_zero(t *testing.T) {
	srv := newServer(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{})
	require.NoError(t, err)
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	const n = 20
	for range n {
		require.NoError(t, pub.Publish(ctxT(t), "auth.user.created", userEvent("user.created", "ok")))
	}

	cfg := fastConfig()
	cfg.FetchBatch, cfg.MaxAckPending = 2, 2 // the backlog stays in the durable
	m.Instrument(&cfg)
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	release := make(chan struct{})
	router.Handle(r.Group("users", "auth.user.*"), "user.created", func(ctx context.Context, _ *envelope.Event, _ struct{}) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	m.WatchRouter(r)
	run(t, r)

	// Blocked: one in the handler, the rest of the credit queued, the
	// backlog pending in the durable.
	require.Eventually(t, func() bool {
		return gather(t, reg, "jetevents_consumer_ack_pending")["group=users"] == 2 &&
			gather(t, reg, "jetevents_deliveries_in_flight")["group=users"] == 1
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, series{"group=users": n - 2}, gather(t, reg, "jetevents_consumer_pending"))
	assert.Equal(t, series{"group=users": 2}, gather(t, reg, "jetevents_group_held"))

	close(release)
	require.Eventually(t, func() bool {
		return gather(t, reg, "jetevents_consumer_pending")["group=users"] == 0 &&
			gather(t, reg, "jetevents_consumer_ack_pending")["group=users"] == 0
	}, 20*time.Second, 20*time.Millisecond, "pending %v", gather(t, reg, "jetevents_consumer_pending"))
	assert.Equal(t, series{"group=users,outcome=handled,reason=,type=user.created": n}, gather(t, reg, "jetevents_deliveries_total"))
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_deliveries_in_flight"))
}

func TestMetrics_labels_are_bounded_and_organization_is_opt_in(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metrics.Config
		want    series
		wantDel series
	}{
		{"default: no organization, capped subjects",
			metrics.Config{MaxLabelValues: 2},
			series{"result=ok,subject=a.one": 1, "result=ok,subject=a.two": 1, "result=ok,subject=_other": 2},
			series{"group=g,outcome=handled,reason=,type=t1": 1}},
		{"organization opted in",
			metrics.Config{MaxLabelValues: 2, OrganizationLabel: true},
			series{"organization=org-1,result=ok,subject=a.one": 1, "organization=org-2,result=ok,subject=a.two": 1,
				"organization=_other,result=ok,subject=_other": 2},
			series{"group=g,organization=org-1,outcome=handled,reason=,type=t1": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg, tt.cfg)
			require.NoError(t, err)
			for i, subject := range []string{"a.one", "a.two", "a.three", "a.four"} {
				orgs := []string{"org-1", "org-2", "org-3", "org-4"}
				_, done := m.PublishObserver(context.Background(), jetstream.PublishInfo{Subject: subject, OrganizationID: orgs[i], Mode: jetstream.ModeSync})
				done(jetstream.PublishResult{})
			}
			m.Observe(router.Outcome{Group: "g", Type: "t1", Result: router.ResultHandled, OrganizationID: "org-1"})
			assert.Equal(t, tt.want, gather(t, reg, "jetevents_events_published_total"))
			assert.Equal(t, tt.wantDel, gather(t, reg, "jetevents_deliveries_total"))
		})
	}
}

func TestMetrics_publish_results_are_named_by_their_sentinel(t *testing.T) {
	tests := []struct {
		err  error
		dup  bool
		want string
	}{
		{nil, false, metrics.ResultOK},
		{nil, true, metrics.ResultDuplicate},
		{transport.ErrNoStream, false, metrics.ResultNoStream},
		{errors.Join(transport.ErrPublish, transport.ErrTimeout), false, metrics.ResultTimeout},
		{errors.Join(envelope.ErrInvalidEvent, envelope.ErrTooLarge), false, metrics.ResultTooLarge},
		{envelope.ErrInvalidEvent, false, metrics.ResultInvalid},
		{envelope.ErrInvalidSubject, false, metrics.ResultInvalid},
		{errors.Join(transport.ErrNotSent, envelope.ErrInvalidEvent), false, metrics.ResultNotSent},
		{transport.ErrClosed, false, metrics.ResultClosed},
		{errors.Join(transport.ErrTooManyPending, transport.ErrTimeout), false, metrics.ResultTooManyPending},
		{errors.New("other"), false, metrics.ResultError},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg, metrics.Config{})
			require.NoError(t, err)
			_, done := m.PublishObserver(context.Background(), jetstream.PublishInfo{Subject: "a.b", Mode: jetstream.ModeAsync})
			assert.Equal(t, series{"": 1}, gather(t, reg, "jetevents_publish_pending"))
			done(jetstream.PublishResult{Err: tt.err, Duplicate: tt.dup})
			assert.Equal(t, series{"result=" + tt.want + ",subject=a.b": 1}, gather(t, reg, "jetevents_events_published_total"))
			assert.Equal(t, series{"": 0}, gather(t, reg, "jetevents_publish_pending"))
		})
	}
}

func TestMetrics_unreadable_dead_letter_stream_is_a_scrape_error_not_a_hang(t *testing.T) {
	srv := newServer(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{ScrapeTimeout: time.Second})
	require.NoError(t, err)
	m.WatchDeadLetters(srv.JS, "NO_SUCH_STREAM")

	// Served over HTTP as Prometheus would scrape it.
	ts := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(ts.Close)
	body := scrapeHTTP(t, ts.URL)
	assert.Contains(t, body, `jetevents_scrape_errors_total{source="stream_info"} 1`)
	assert.NotContains(t, body, "jetevents_dead_letter_messages{")
}

func TestNew_refuses_bad_config_and_double_registration(t *testing.T) {
	_, err := metrics.New(nil, metrics.Config{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	_, err = metrics.New(prometheus.NewRegistry(), metrics.Config{MaxLabelValues: -1})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	_, err = metrics.New(prometheus.NewRegistry(), metrics.Config{HandlerBuckets: []float64{1, 0.5}})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)

	reg := prometheus.NewRegistry()
	_, err = metrics.New(reg, metrics.Config{})
	require.NoError(t, err)
	_, err = metrics.New(reg, metrics.Config{})
	assert.ErrorIs(t, err, metrics.ErrRegister)
	_, err = metrics.New(reg, metrics.Config{Namespace: "other"})
	assert.NoError(t, err, "the failed New left nothing registered under another namespace")
}

// A paused group is up and paused, with the time it resumes; resumed, it is
// up and not paused, and the resume time is gone.
func TestMetrics_a_paused_group_is_up_and_paused_until_its_deadline(t *testing.T) {
	srv := newServer(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{})
	require.NoError(t, err)
	cfg := fastConfig()
	m.Instrument(&cfg)
	r, err := router.New(srv.Conn, cfg)
	require.NoError(t, err)
	router.Handle(r.Group("users", "auth.user.*"), "user.created", handler)
	m.WatchRouter(r)
	run(t, r)
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_group_paused"))
	assert.Empty(t, gather(t, reg, "jetevents_group_paused_until_timestamp_seconds"))

	until := time.Now().Add(time.Hour).Truncate(time.Second)
	require.NoError(t, r.Pause(ctxT(t), "users", until))
	assert.Equal(t, series{"group=users": 1}, gather(t, reg, "jetevents_group_paused"))
	assert.Equal(t, series{"group=users": float64(until.Unix())}, gather(t, reg, "jetevents_group_paused_until_timestamp_seconds"))
	assert.Equal(t, series{"group=users": 1}, gather(t, reg, "jetevents_group_up"), "a paused group is up")

	require.NoError(t, r.Resume(ctxT(t), "users"))
	assert.Equal(t, series{"group=users": 0}, gather(t, reg, "jetevents_group_paused"))
	assert.Empty(t, gather(t, reg, "jetevents_group_paused_until_timestamp_seconds"))
	assert.Empty(t, gather(t, reg, "jetevents_scrape_errors_total"))
}
