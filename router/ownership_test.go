package router_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// startLogged runs a router of the seed subscriber's group with a logger
// writing to out, and stops it once it is bound.
func startLogged(t *testing.T, e *env, out *syncBuffer) {
	t.Helper()
	r, err := router.New(e.srv.Conn, router.Config{
		Stream:     stream,
		MaxDeliver: 5,                // as pkg/events/examples/subscriber_example.go
		AckWait:    30 * time.Second, // idem
		Logger:     middleware.NewSlogLogger(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))),
	})
	require.NoError(t, err)
	r.Group("user-notifications", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	stop := start(t, r)
	require.NoError(t, stop())
}

func TestRouter_and_scripts_streams_yaml_agree_on_the_seed_durable(t *testing.T) {
	e := newEnv(t)
	specs, err := jetstream.LoadSpecs("../scripts/streams.yaml")
	require.NoError(t, err)
	_, err = jetstream.Apply(ctxT(t), e.srv.JS, specs.All()...)
	require.NoError(t, err)
	before, err := e.srv.JS.Consumer(ctxT(t), stream, "user-notifications")
	require.NoError(t, err)

	var out syncBuffer
	startLogged(t, e, &out)
	assert.NotContains(t, out.String(), "differed", "the router changed nothing the file declared: %s", out.String())
	after, err := e.srv.JS.Consumer(ctxT(t), stream, "user-notifications")
	require.NoError(t, err)
	assert.Equal(t, before.CachedInfo().Config, after.CachedInfo().Config)

	// Applying the file again after the router ran changes nothing either.
	changes, err := jetstream.Apply(ctxT(t), e.srv.JS, specs.All()...)
	require.NoError(t, err)
	for _, c := range changes {
		assert.NotEqual(t, jetstream.Updated, c.Action, "%v", c)
	}
}

func TestRouter_names_every_setting_it_changes_on_a_durable_that_differs(t *testing.T) {
	e := newEnv(t)
	_, err := e.srv.JS.CreateConsumer(ctxT(t), stream, natsjs.ConsumerConfig{
		Durable: "user-notifications", AckPolicy: natsjs.AckExplicitPolicy, FilterSubject: "auth.user.>",
		AckWait: time.Minute, MaxDeliver: 8,
	})
	require.NoError(t, err)
	var out syncBuffer
	startLogged(t, e, &out)
	log := out.String()
	assert.Contains(t, log, "level=WARN")
	assert.Contains(t, log, "max_deliver 8 -> -1")
	assert.Contains(t, log, "ack_wait 1m0s -> 30s")
}

func TestRouter_group_start_position_places_a_new_durable(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(cut time.Time) router.GroupConfig
		wantN []int // the "n" of the events handled
	}{
		{"all (default)", func(time.Time) router.GroupConfig { return router.GroupConfig{} }, []int{1, 2, 3, 4}},
		{"new events only", func(time.Time) router.GroupConfig { return router.GroupConfig{Start: router.StartNew} }, []int{4}},
		{"from a sequence", func(time.Time) router.GroupConfig {
			return router.GroupConfig{Start: router.StartAtSequence, StartSeq: 2}
		}, []int{2, 3, 4}},
		{"from a time", func(cut time.Time) router.GroupConfig {
			return router.GroupConfig{Start: router.StartAtTime, StartTime: cut}
		}, []int{3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"n": 1}))
			e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"n": 2}))
			// The time cut falls between the second and the third event,
			// as the server stamped them.
			s, err := e.srv.JS.Stream(ctxT(t), stream)
			require.NoError(t, err)
			m2, err := s.GetMsg(ctxT(t), 2)
			require.NoError(t, err)
			cut := m2.Time.Add(time.Nanosecond)
			require.Eventually(t, func() bool { return time.Now().After(cut) }, time.Second, time.Millisecond)
			e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"n": 3}))

			r, err := router.New(e.srv.Conn, fastConfig())
			require.NoError(t, err)
			gc := tt.cfg(cut)
			gc.Durable, gc.FilterSubjects = "proj", []string{"auth.user.>"}
			got := make(chan int, 8)
			router.Handle(r.AddGroup(gc), "user.created", func(_ context.Context, _ *envelope.Event, d struct {
				N int `json:"n"`
			}) error {
				got <- d.N
				return nil
			})
			start(t, r)
			e.publish(t, "auth.user.created", userEvent("user.created", map[string]any{"n": 4}))
			var seen []int
			for len(seen) == 0 || seen[len(seen)-1] != 4 {
				select {
				case n := <-got:
					seen = append(seen, n)
				case <-time.After(10 * time.Second):
					t.Fatalf("event 4 not handled; saw %v", seen)
				}
			}
			assert.Equal(t, tt.wantN, seen)
		})
	}
}
