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
