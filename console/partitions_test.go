package console_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/router"
)

// Without a PartitionSource the console reads the partitions of a running
// partitioned group from JetStream: each partition with the process that
// runs it.
func TestConsole_group_page_shows_a_running_partitioned_groups_owners(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := context.Background()
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	r, err := router.New(srv.Conn, router.Config{Stream: "AUTH_EVENTS", MemberTTL: time.Second})
	require.NoError(t, err)
	spec := partition.Spec{Subjects: []string{"auth.user.>"}, Count: 2, Key: router.KeyOrganization}
	r.AddGroup(router.GroupConfig{Durable: "users", FilterSubjects: []string{"auth.user.>"}, Partitions: spec}).
		On("user.created", func(context.Context, *envelope.Event) error { return nil })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	<-r.Running()
	member := ""
	require.Eventually(t, func() bool {
		h := r.Health(ctx)
		if len(h.Partitioned) == 1 && len(h.Partitioned[0].Units) == 3 {
			member = h.Partitioned[0].Member
			groups, err := jetstream.ListPartitionedGroups(ctx, srv.JS, "")
			return err == nil && len(groups) == 1 && len(groups[0].Owners) == 3
		}
		return false
	}, 20*time.Second, 20*time.Millisecond)

	w := newWeb(t, console.Config{JetStream: srv.JS})
	_, body := w.get("groups/AUTH_EVENTS/users")
	assert.Contains(t, body, "Ordered by its order key, over 1 process; 3 partitions.")
	assert.Len(t, regexp.MustCompile(regexp.QuoteMeta(member)).FindAllString(body, -1), 3, "the process runs the 2 partitions and the unplaced unit")
	assert.NotContains(t, body, "This group is not partitioned")

	// A group that is not partitioned says so.
	_, body = w.get("groups/AUTH_EVENTS/absent")
	assert.NotContains(t, body, member)
}
