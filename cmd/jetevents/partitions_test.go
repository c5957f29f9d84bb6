package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/router"
)

// The operator's view of a partitioned group: two routers share its three
// partitions and its own durable; `jetevents consumers` shows which process
// runs each and what waits in it, and -json names the owners; `consumers
// pause` pauses the partitions with the group.
func TestConsumers_shows_which_process_runs_each_partition(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	spec := partition.Spec{Subjects: []string{"auth.user.>"}, Count: 3, Key: router.KeyOrganization}
	var routers []*router.Router
	for range 2 {
		r, err := router.New(srv.Conn, router.Config{Stream: "AUTH_EVENTS", MemberTTL: time.Second, Logger: middleware.NewSlogLogger(nil)})
		require.NoError(t, err)
		r.AddGroup(router.GroupConfig{Durable: "user-notifications", FilterSubjects: []string{"auth.user.>"}, Partitions: spec}).
			On("user.created", func(context.Context, *envelope.Event) error { return nil })
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
		<-r.Running()
		routers = append(routers, r)
	}
	// Both routers run two of the four units.
	require.Eventually(t, func() bool {
		for _, r := range routers {
			h := r.Health(ctx)
			if len(h.Partitioned) != 1 || len(h.Partitioned[0].Units) != 2 || h.Partitioned[0].Members != 2 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	// And have listed what they run since (a beat, a third of MemberTTL):
	// each unit has one owner.
	require.Eventually(t, func() bool {
		out := mustRun(t, ctx, "consumers", "-server", srv.URL)
		return !strings.Contains(out, "(none: waiting") && !strings.Contains(out, " + ")
	}, 10*time.Second, 50*time.Millisecond)

	out := mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-server", srv.URL)
	assert.Regexp(t, `partitioned group AUTH_EVENTS/user-notifications: 3 partitions, 2 processes: \S+ \(\S+ pid \d+, 2 units\), \S+ \(\S+ pid \d+, 2 units\)`, out)
	owners := map[string]bool{}
	for _, unit := range []struct{ name, durable string }{{"0", "user-notifications-p0"}, {"1", "user-notifications-p1"}, {"2", "user-notifications-p2"}, {"unplaced", "user-notifications"}} {
		m := regexp.MustCompile(`(?m)^\s+` + unit.name + `\s+` + unit.durable + `\s+(\S+)\s+(\d+)\s+(\d+)$`).FindStringSubmatch(out)
		require.NotNil(t, m, "row of partition %s in:\n%s", unit.name, out)
		owners[m[1]] = true
	}
	assert.Len(t, owners, 2, "the two processes share the units")

	seen := 0
	for _, l := range lines(mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-json", "-server", srv.URL)) {
		var v struct {
			Name        string   `json:"name"`
			PartitionOf string   `json:"partition_of"`
			Partition   string   `json:"partition"`
			Owners      []string `json:"owners"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		if v.Name == "user-notifications-p1" {
			seen++
			assert.Equal(t, "user-notifications", v.PartitionOf)
			assert.Equal(t, "1", v.Partition)
			assert.Len(t, v.Owners, 1)
		}
	}
	assert.Equal(t, 1, seen)

	out = mustRun(t, ctx, "consumers", "pause", "user-notifications", "-for", "1h", "-server", srv.URL)
	assert.Contains(t, out, "paused AUTH_EVENTS/user-notifications and its 3 partitions (user-notifications-p0, user-notifications-p1, user-notifications-p2) until")
	for _, r := range routers {
		for _, g := range r.Health(ctx).Groups {
			assert.False(t, g.PausedUntil.IsZero(), "%s paused", g.Group)
		}
	}
	out = mustRun(t, ctx, "consumers", "resume", "user-notifications", "-server", srv.URL)
	assert.Contains(t, out, "resumed AUTH_EVENTS/user-notifications and its 3 partitions")
}
