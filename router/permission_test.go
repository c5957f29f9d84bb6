package router_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// permServer runs a JetStream server with an admin user and a user that may
// do everything but pull messages ($JS.API.CONSUMER.MSG.NEXT.>).
func permServer(t *testing.T) (url string) {
	t.Helper()
	all := &server.SubjectPermission{Allow: []string{">"}}
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin", Permissions: &server.Permissions{Publish: all, Subscribe: all}},
			{Username: "nopull", Password: "nopull", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.MSG.NEXT.>"}},
				Subscribe: all,
			}},
		},
	}
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	require.True(t, ns.ReadyForConnections(10*time.Second))
	return ns.ClientURL()
}

func TestRouter_without_permission_to_pull_fails_at_start_with_ErrPermission(t *testing.T) {
	url := permServer(t)
	admin, err := nats.Connect(url, nats.UserInfo("admin", "admin"))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	js, err := natsjs.New(admin)
	require.NoError(t, err)
	_, err = jetstream.Apply(ctxT(t), js, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)

	nc, err := nats.Connect(url, nats.UserInfo("nopull", "nopull"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	cfg := liveConfig()
	cfg.CloseTimeout = time.Hour // a failed start must not wait for it
	r, err := router.New(nc, cfg)
	require.NoError(t, err)
	r.Group("users", "auth.user.>").On("user.created", func(context.Context, *envelope.Event) error { return nil })
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, transport.ErrPermission)
		assert.Contains(t, err.Error(), "group users")
		assert.Contains(t, err.Error(), "$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.users", "names the refused subject")
		assert.NotContains(t, err.Error(), "nopull", "no credential in the error")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not fail")
	}
	select {
	case <-r.Running():
		t.Fatal("Running closed although Run failed to start")
	default:
	}
}
