package router_test

import (
	"context"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/router"
)

// TestRouter_Run_on_a_server_without_JetStream_fails_at_start_with_ErrNoJetStream:
// Run's start error on a core NATS server says what is missing and what to
// do, not a raw "no responders".
func TestRouter_Run_on_a_server_without_JetStream_fails_at_start_with_ErrNoJetStream(t *testing.T) {
	srv := eventstest.NewServerWithConfig(t, embedded.Config{NoJetStream: true})
	r, err := router.New(srv.Conn, fastConfig())
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	err = r.Run(ctxT(t))
	require.ErrorIs(t, err, events.ErrNoJetStream)
	assert.NotErrorIs(t, err, events.ErrNoStream)
	assert.Contains(t, err.Error(), "group users")
	assert.Contains(t, err.Error(), "start nats-server with JetStream (-js)")
}
