package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

const stream = "AUTH_EVENTS"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newServer is an embedded server with the AUTH_EVENTS and DLQ streams.
func newServer(t *testing.T) *eventstest.Server {
	t.Helper()
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	return srv
}

// fastConfig retries within milliseconds, without jitter.
func fastConfig() router.Config {
	return router.Config{
		Stream:       stream,
		MaxDeliver:   3,
		AckWait:      2 * time.Second,
		Backoff:      transport.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, Jitter: -1},
		CloseTimeout: 5 * time.Second,
		Logger:       middleware.NewSlogLogger(nil),
	}
}

// run runs r until the test ends and waits until it consumes; the returned
// stop cancels it and returns Run's error.
func run(t *testing.T, r *router.Router) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Running():
	case err := <-done:
		cancel()
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("router did not start")
	}
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("router did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func userEvent(typ, mode string) *envelope.Event {
	return envelope.NewEvent(typ, "auth-service", "org-123", time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), map[string]any{"mode": mode})
}

// storeTwice stores ev a second time under another message id (a producer
// retrying with a fresh id): the stream keeps both copies.
func storeTwice(t *testing.T, srv *eventstest.Server, subject string, ev *envelope.Event) {
	t.Helper()
	raw, err := marshaler.Default().EventToNATS(subject, ev, marshaler.Relations{})
	require.NoError(t, err)
	raw.Header.Set("Nats-Msg-Id", "retry-"+ev.ID)
	ack, err := srv.JS.PublishMsg(ctxT(t), raw)
	require.NoError(t, err)
	require.False(t, ack.Duplicate)
}

// series is one gathered sample: its labels ("k=v,k=v", sorted) and value
// (a histogram's sample count).
type series map[string]float64

// gather scrapes reg and returns the series of the metric name.
func gather(t *testing.T, reg prometheus.Gatherer, name string) series {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := series{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelsOf(m)] = valueOf(m)
		}
	}
	return out
}

func labelsOf(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func (s series) sum() float64 {
	var n float64
	for _, v := range s {
		n += v
	}
	return n
}

// scrapeHTTP GETs url and returns the body.
func scrapeHTTP(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
