package dlq_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/dlq"
	"github.com/jetevents/events/middleware"
)

// TestList_a_search_without_permission_to_create_consumers_reads_one_by_one:
// a user who may read streams but not create consumers still searches (the
// ephemeral consumer of a search is refused, List reads with the
// message-get API instead), with the same result.
func TestList_a_search_without_permission_to_create_consumers_reads_one_by_one(t *testing.T) {
	readAPI := []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.MSG.GET.>"}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "reader", Password: "r", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: readAPI},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}})
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(30*time.Second))

	admin, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "a"))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	e := newEnvOn(t, admin)
	for i := range 12 {
		reason := middleware.ReasonMaxDeliver
		if i%4 == 3 {
			reason = middleware.ReasonPermanent
		}
		e.deadLetter(t, "auth.user.created", "user.created", "org-1", reason, errDBDown)
	}

	reader, err := nats.Connect(s.ClientURL(), nats.UserInfo("reader", "r"))
	require.NoError(t, err)
	t.Cleanup(reader.Close)
	for name, nc := range map[string]*nats.Conn{"admin (ephemeral consumer)": admin, "reader (message get)": reader} {
		t.Run(name, func(t *testing.T) {
			js, err := natsjs.New(nc)
			require.NoError(t, err)
			q, err := dlq.Open(testCtx(t), js, "")
			require.NoError(t, err)
			p, err := q.List(testCtx(t), dlq.PageRequest{Filter: dlq.Filter{Reason: "permanent"}, Limit: 2})
			require.NoError(t, err)
			var got []uint64
			for _, d := range p.DeadLetters {
				got = append(got, d.Seq)
			}
			assert.Equal(t, []uint64{4, 8}, got)
			assert.EqualValues(t, 9, p.Next, "the next page starts after the last match")
			assert.Equal(t, 8, p.Scanned)
		})
	}
}
