package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// withDeadLetters is an app whose router dead-lettered three events (two
// user.created declined, one user.deleted) and handled one.
func withDeadLetters(t *testing.T) (*app, []string) {
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start()
	var ids []string
	ids = append(ids, a.publish("user.created", "org-1", errDeclined).ID)
	ids = append(ids, a.publish("user.deleted", "org-2", errors.New("user service down")).ID)
	ids = append(ids, a.publish("user.created", "org-2", errDeclined).ID)
	ok := a.publish("user.created", "org-3", nil)
	waitFor(t, "3 dead letters", func() bool { return dlqCount(t, srv.JS) == 3 })
	waitFor(t, "the good event handled", func() bool { return a.handledCount(ok.ID) == 1 })
	return a, ids
}

func TestConsole_pages_show_groups_dead_letters_and_schedules(t *testing.T) {
	a, ids := withDeadLetters(t)
	later := time.Now().Add(time.Hour)
	require.NoError(t, a.pub.Publish(testCtx(t), "auth.user.reminded", reminderEvent(), transport.At(later)))
	w := newWeb(t, console.Config{JetStream: a.srv.JS, Health: a.r.Health})

	status, body := w.get("")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `href="/groups/AUTH_EVENTS/user-notifications"`)
	assert.Contains(t, body, `data-live="group/AUTH_EVENTS/user-notifications/pending"`)
	assert.Contains(t, body, `<span class="big" data-live="dlq/total">3</span>`)
	assert.Contains(t, body, `data-live="schedules/total">1<`)
	assert.Contains(t, body, `data-live="local/ready" data-live-state>ready<`)
	assert.Contains(t, body, "read-only")
	assert.NotContains(t, body, "<form method=\"post\"")

	status, body = w.get("groups/AUTH_EVENTS/user-notifications")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "max deliver (server)")
	assert.Contains(t, body, "unlimited")
	assert.Contains(t, body, "This service's router")
	assert.Contains(t, body, "This group is not partitioned")

	status, body = w.get("deadletters")
	require.Equal(t, http.StatusOK, status, body)
	for _, want := range []string{"permanent", "card declined", "user service down", "auth.user.deleted", "org-2", ">3</a>"} {
		assert.Contains(t, body, want)
	}
	status, body = w.get("deadletters?reason=permanent&type=user.deleted")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "user service down")
	assert.NotContains(t, body, "card declined")
	status, body = w.get("deadletters?subject=auth.user.created")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "dlq.auth.user.created", "a filter without the prefix names the one that works")

	status, body = w.get("deadletters/1")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, ids[0])
	assert.Contains(t, body, "Dlq-Reason")
	assert.Contains(t, body, "&#34;organization_id&#34;: &#34;org-1&#34;")
	status, _ = w.get("deadletters/99")
	assert.Equal(t, http.StatusNotFound, status)

	status, body = w.get("schedules")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "auth.user.reminded")
	assert.Contains(t, body, later.UTC().Format("2006-01-02 15:04:05Z"))

	status, body = w.get("api/live")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"dlq/total":"3"`)
	assert.Contains(t, body, `"group/AUTH_EVENTS/user-notifications/state":`)

	status, body = w.get("assets/console.js")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "data-live")
}

func reminderEvent() *envelope.Event { return newEvent("user.reminded", "org-9") }

func TestConsole_is_read_only_by_default(t *testing.T) {
	a, _ := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS})
	for _, page := range []string{"", "groups/AUTH_EVENTS/user-notifications", "deadletters", "deadletters/1", "schedules"} {
		status, body := w.get(page)
		require.Equal(t, http.StatusOK, status)
		assert.NotContains(t, body, `method="post"`, "page %q shows no write", page)
		assert.NotContains(t, body, "Replay", "page %q", page)
	}
	for _, path := range []string{"deadletters/replay", "deadletters/purge", "schedules/cancel", "groups/AUTH_EVENTS/user-notifications/pause", "groups/AUTH_EVENTS/user-notifications/resume"} {
		status, _, body := w.post(path, url.Values{"one": {"1"}, "all": {"1"}, "confirm": {"yes"}, "stream": {"AUTH_EVENTS"}, "seq": {"1"}})
		assert.Equal(t, http.StatusForbidden, status, path)
		assert.Contains(t, body, "read-only")
	}
	assert.EqualValues(t, 3, dlqCount(t, a.srv.JS), "nothing replayed or purged")
}

func TestConsole_a_write_without_its_CSRF_token_is_refused(t *testing.T) {
	a, _ := withDeadLetters(t)
	a.fix()
	logs := &logBuffer{}
	cfg := console.Config{JetStream: a.srv.JS, AllowWrites: true, Logger: logs.logger(),
		Identity: func(r *http.Request) string { return "alice@example.com" }}
	w := newWeb(t, cfg)
	token := w.token("deadletters")

	tests := []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"one": {"1"}}},
		{"a wrong token", url.Values{"one": {"1"}, "csrf": {"x" + token[1:]}}},
		{"another browser's token", url.Values{"one": {"1"}, "csrf": {newWeb(t, cfg).token("deadletters")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := w.post("deadletters/replay", tt.form)
			assert.Equal(t, http.StatusForbidden, status)
			assert.Contains(t, body, "CSRF")
		})
	}
	fresh := newWeb(t, cfg) // a browser that never loaded a page has no cookie
	status, _, _ := fresh.post("deadletters/replay", url.Values{"one": {"1"}, "csrf": {token}})
	assert.Equal(t, http.StatusForbidden, status, "a token without its cookie")
	assert.EqualValues(t, 3, dlqCount(t, a.srv.JS))
	assert.Contains(t, logs.String(), "CSRF")

	status, where, _ := w.post("deadletters/replay", url.Values{"one": {"1"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	assert.Equal(t, "/deadletters?", where)
	assert.EqualValues(t, 2, dlqCount(t, a.srv.JS))
	assert.Regexp(t, `msg="console write" who=alice@example.com action=replay .*replayed=1`, logs.String())
}

func TestConsole_replay_and_purge(t *testing.T) {
	a, ids := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "bob" }})
	token := w.token("deadletters")
	a.fix()

	// One, from its row: its handler runs again and succeeds.
	status, _, _ := w.post("deadletters/replay", url.Values{"one": {"1"}, "sel": {"2"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	waitFor(t, "the replayed event handled", func() bool { return a.handledCount(ids[0]) == 1 })
	_, body := w.get("deadletters")
	assert.Contains(t, body, "Replayed 1 dead letter now: DLQ seq 1 -&gt; auth.user.created", "the flash says what was done")
	assert.NotContains(t, body, `data-seq="1"`)
	assert.Contains(t, body, `data-seq="2"`, "the row's button replays that row only")
	_, body = w.get("deadletters")
	assert.NotContains(t, body, "Replayed 1", "a flash is shown once")

	// A selection: the checked rows.
	a.publish("user.created", "org-4", errDeclined)
	a.publish("user.created", "org-5", errDeclined)
	waitFor(t, "2 more dead letters", func() bool { return dlqCount(t, a.srv.JS) == 4 })
	a.fix()
	status, _, _ = w.post("deadletters/replay", url.Values{"sel": {"4", "5"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	_, body = w.get("deadletters")
	assert.Contains(t, body, "Replayed 2 dead letters now")
	assert.NotContains(t, body, `data-seq="4"`)
	assert.NotContains(t, body, `data-seq="5"`)
	assert.EqualValues(t, 2, dlqCount(t, a.srv.JS))

	// Every match of a filter, after a confirmation.
	form := url.Values{"all": {"1"}, "reason": {"permanent"}, "type": {"user.deleted"}, "csrf": {token}}
	status, _, body = w.post("deadletters/replay", form)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Replay dead letters with reason &#34;permanent&#34;, type &#34;user.deleted&#34;?")
	assert.EqualValues(t, 2, dlqCount(t, a.srv.JS), "nothing replayed before the confirmation")
	form.Set("confirm", "yes")
	status, _, _ = w.post("deadletters/replay", form)
	require.Equal(t, http.StatusSeeOther, status)
	waitFor(t, "the user.deleted event handled", func() bool { return a.handledCount(ids[1]) == 1 })
	assert.EqualValues(t, 1, dlqCount(t, a.srv.JS))

	// Purge asks first.
	status, _, body = w.post("deadletters/purge", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Purge every dead letter?")
	assert.Contains(t, body, "DLQ holds 1 dead letters on any subject.")
	assert.EqualValues(t, 1, dlqCount(t, a.srv.JS))
	status, _, _ = w.post("deadletters/purge", url.Values{"csrf": {token}, "confirm": {"yes"}})
	require.Equal(t, http.StatusSeeOther, status)
	assert.Zero(t, dlqCount(t, a.srv.JS))
	_, body = w.get("deadletters")
	assert.Contains(t, body, "Purged 1 dead letter from DLQ")
	assert.Zero(t, a.handledCount(ids[2]), "the purged one never ran")
}

func TestConsole_replay_at_a_time_is_a_schedule_that_can_be_cancelled(t *testing.T) {
	a, _ := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "bob" }})
	token := w.token("deadletters")
	status, _, _ := w.post("deadletters/replay", url.Values{"one": {"1"}, "when": {"2h"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	_, body := w.get("deadletters")
	assert.Contains(t, body, "Replayed 1 dead letter at ")
	page, err := jetstream.ListSchedules(testCtx(t), a.srv.JS, "AUTH_EVENTS", 0, 10)
	require.NoError(t, err)
	require.Len(t, page.Schedules, 1)
	s := page.Schedules[0]
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), s.At, time.Minute)

	status, _, _ = w.post("schedules/cancel", url.Values{"stream": {"AUTH_EVENTS"}, "seq": {fmt.Sprint(s.Seq)}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	_, body = w.get("schedules")
	assert.Contains(t, body, "Cancelled the schedule AUTH_EVENTS seq")
	assert.Contains(t, body, "No pending schedule in AUTH_EVENTS")

	status, _, body = w.post("deadletters/replay", url.Values{"one": {"2"}, "when": {"tomorrow"}, "csrf": {token}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "want now, a duration")
}

func TestConsole_pause_and_resume_a_group(t *testing.T) {
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start()
	w := newWeb(t, console.Config{JetStream: srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "carol" }})
	token := w.token("groups/AUTH_EVENTS/user-notifications")

	status, where, _ := w.post("groups/AUTH_EVENTS/user-notifications/pause", url.Values{"for": {"30m"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	assert.Equal(t, "/groups/AUTH_EVENTS/user-notifications", where)
	ci := consumerInfo(t, srv, "user-notifications")
	require.True(t, ci.Paused)
	assert.InDelta(t, (30 * time.Minute).Seconds(), ci.PauseRemaining.Seconds(), 60)

	e := a.publish("user.created", "org-1", nil)
	_, body := w.get("groups/AUTH_EVENTS/user-notifications")
	assert.Contains(t, body, "Paused AUTH_EVENTS/user-notifications until")
	assert.Regexp(t, `data-live="group/AUTH_EVENTS/user-notifications/pause">for (29m\d+s|30m)<`, body)
	_, body = w.get("")
	assert.Contains(t, body, `data-state="paused"`)
	assert.Zero(t, a.handledCount(e.ID), "a paused group receives nothing")

	status, _, _ = w.post("groups/AUTH_EVENTS/user-notifications/resume", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	assert.False(t, consumerInfo(t, srv, "user-notifications").Paused)
	waitFor(t, "the event handled after the resume", func() bool { return a.handledCount(e.ID) == 1 })

	status, _, _ = w.post("groups/AUTH_EVENTS/user-notifications/pause", url.Values{"for": {"soon"}, "csrf": {token}})
	assert.Equal(t, http.StatusBadRequest, status)
}

func TestConsole_group_page_shows_partitions_and_owners_from_the_source(t *testing.T) {
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start()
	since := time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC)
	src := console.PartitionsFunc(func(ctx context.Context, stream, group string) (console.GroupPartitions, error) {
		if group != "user-notifications" {
			return console.GroupPartitions{}, nil
		}
		return console.GroupPartitions{Partitioned: true, Key: "organization_id", Partitions: []console.Partition{
			{ID: "0", Filter: "auth.user.*.0", Owner: "billing-7f9c:4121", OwnedSince: since, Pending: 12, State: "active"},
			{ID: "1", Filter: "auth.user.*.1"},
		}}, nil
	})
	w := newWeb(t, console.Config{JetStream: srv.JS, Partitions: src})
	_, body := w.get("groups/AUTH_EVENTS/user-notifications")
	assert.Contains(t, body, "Ordered by organization_id; 2 partitions.")
	assert.Contains(t, body, "billing-7f9c:4121")
	assert.Contains(t, body, "2024-01-15 09:00:00Z")
	assert.Contains(t, body, `<span class="warn">unowned</span>`)

	failing := console.PartitionsFunc(func(context.Context, string, string) (console.GroupPartitions, error) {
		return console.GroupPartitions{}, errors.New("owners unknown: KV bucket missing")
	})
	w = newWeb(t, console.Config{JetStream: srv.JS, Partitions: failing})
	status, body := w.get("groups/AUTH_EVENTS/user-notifications")
	assert.Equal(t, http.StatusOK, status, "the rest of the page still shows")
	assert.Contains(t, body, "partitions: owners unknown: KV bucket missing")
	assert.Contains(t, body, "This group is not partitioned")
}

func TestConsole_never_renders_a_credential(t *testing.T) {
	const password, token = "pw-s3cret-9f1c2", "tok-s3cret-77ab"
	for _, tt := range []struct {
		name   string
		secret string
		auth   authMode
	}{
		{"user and password in the URL", password, authUser},
		{"token in the URL", token, authToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc := authServer(t, tt.auth, password, token)
			js := jsOf(t, nc)
			ensureStreams(t, js)
			// A dead letter whose original carried credentials in headers.
			dl := newEvent("user.created", "org-1")
			msg, err := marshaler.Default().EventToNATS("auth.user.created", dl, marshaler.Relations{})
			require.NoError(t, err)
			msg.Header.Set("Authorization", "Bearer "+tt.secret)
			msg.Header.Set("X-Api-Token", tt.secret)
			sendDeadLetter(t, nc, js, msg)

			w := newWeb(t, console.Config{JetStream: js, AllowWrites: true, Identity: func(*http.Request) string { return "dave" }})
			for _, page := range []string{"", "groups/AUTH_EVENTS/user-notifications", "deadletters", "deadletters/1", "schedules", "api/live", "deadletters?q=x", "nope"} {
				_, body := w.get(page)
				assert.NotContains(t, body, tt.secret, "page %q renders the secret", page)
				assert.NotContains(t, body, password)
				assert.NotContains(t, body, token)
			}
			_, body := w.get("deadletters/1")
			assert.Contains(t, body, "[redacted]")
			assert.Contains(t, body, "127.0.0.1", "the server is named, without its credentials")
			_, _, body = w.post("deadletters/purge", url.Values{"csrf": {w.token("deadletters")}})
			assert.NotContains(t, body, tt.secret)
		})
	}
}

func TestConsole_refuses_other_hosts_when_AllowedHosts_is_set(t *testing.T) {
	srv := eventstest.NewServer(t)
	ensureStreams(t, srv.JS)
	w := newWeb(t, console.Config{JetStream: srv.JS, AllowedHosts: []string{"127.0.0.1", "localhost"}})
	status, _ := w.get("")
	assert.Equal(t, http.StatusOK, status)
	req, err := http.NewRequest(http.MethodGet, w.base, nil)
	require.NoError(t, err)
	req.Host = "attacker.example:8080"
	resp, err := w.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestConsole_mounted_under_a_path(t *testing.T) {
	a, _ := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS, Path: "/ops/events/"})
	status, body := w.get("")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `href="/ops/events/deadletters"`)
	assert.Contains(t, body, `src="/ops/events/assets/console.js"`)
	assert.Contains(t, body, `data-live-url="/ops/events/api/live"`)
	status, _ = w.get("deadletters/1")
	assert.Equal(t, http.StatusOK, status)
	resp, err := w.client.Get(w.srv.URL + "/ops/events")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect}, resp.StatusCode)
	assert.Equal(t, "/ops/events/", resp.Header.Get("Location"))
}

func TestConsole_pages_forbid_inline_script_and_framing(t *testing.T) {
	srv := eventstest.NewServer(t)
	ensureStreams(t, srv.JS)
	w := newWeb(t, console.Config{JetStream: srv.JS})
	resp, err := w.client.Get(w.base)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

func TestConfig_Validate(t *testing.T) {
	srv := eventstest.NewServer(t)
	id := func(*http.Request) string { return "x" }
	tests := []struct {
		name string
		cfg  console.Config
		want string
	}{
		{"no JetStream", console.Config{}, "JetStream is required"},
		{"path without slashes", console.Config{JetStream: srv.JS, Path: "ops"}, `Path "ops" must start and end with /`},
		{"writes without identity", console.Config{JetStream: srv.JS, AllowWrites: true}, "AllowWrites needs an Identity"},
		{"short CSRF key", console.Config{JetStream: srv.JS, CSRFKey: []byte("short")}, "CSRFKey has 5 bytes"},
		{"page too large", console.Config{JetStream: srv.JS, PageSize: 5000}, "PageSize 5000"},
		{"refresh too often", console.Config{JetStream: srv.JS, Refresh: time.Millisecond}, "Refresh 1ms"},
		{"nil outbox", console.Config{JetStream: srv.JS, Outbox: []console.OutboxBacklog{nil}}, "nil backlog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := console.New(tt.cfg)
			require.ErrorIs(t, err, console.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := console.New(console.Config{JetStream: srv.JS, AllowWrites: true, Identity: id})
	assert.NoError(t, err)
}

func TestConsole_shows_the_outbox_backlog(t *testing.T) {
	srv := eventstest.NewServer(t)
	ensureStreams(t, srv.JS)
	backlog := func(context.Context) (string, int64, time.Duration, error) {
		return "jetevents_outbox", 1234, 95 * time.Second, nil
	}
	w := newWeb(t, console.Config{JetStream: srv.JS, Outbox: []console.OutboxBacklog{backlog}})
	_, body := w.get("")
	assert.Contains(t, body, "Outbox jetevents_outbox")
	assert.Contains(t, body, `data-live="outbox/jetevents_outbox/pending">1,234<`)
	assert.Contains(t, body, `data-live="outbox/jetevents_outbox/oldest">1m35s<`)
	_, body = w.get("api/live")
	assert.Contains(t, body, `"outbox/jetevents_outbox/oldest":"1m35s"`)
}

// TestConsole_a_pause_survives_a_router_restart: the console pauses the
// durable itself (JetStream's consumer pause), so a router that starts
// again, even with other settings it applies to the durable, stays paused.
func TestConsole_a_pause_survives_a_router_restart(t *testing.T) {
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start()
	w := newWeb(t, console.Config{JetStream: srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "carol" }})
	status, _, _ := w.post("groups/AUTH_EVENTS/user-notifications/pause", url.Values{"csrf": {w.token("groups/AUTH_EVENTS/user-notifications")}})
	require.Equal(t, http.StatusSeeOther, status)
	a.stop()
	a.startWith(func(c *router.Config) { c.AckWait = 45 * time.Second })
	ci := consumerInfo(t, srv, "user-notifications")
	assert.Equal(t, 45*time.Second, ci.Config.AckWait, "the router applied its settings")
	assert.True(t, ci.Paused, "and the durable is still paused")
	assert.InDelta(t, defaultPauseSeconds, ci.PauseRemaining.Seconds(), 60)
}

var defaultPauseSeconds = console.DefaultPause.Seconds()

// TestConsole_pauses_through_the_routers_pauser: a service hands its router
// to its console (Config.Pauser = r.StreamPauser()); the group page's pause
// and resume go through Router.Pause and Resume, so the router's Health
// reports the pause, and a group that is not the router's is refused.
func TestConsole_pauses_through_the_routers_pauser(t *testing.T) {
	var _ console.Pauser = router.StreamPauser{}
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start()
	w := newWeb(t, console.Config{JetStream: srv.JS, AllowWrites: true, Pauser: a.r.StreamPauser(), Health: a.r.Health,
		Identity: func(*http.Request) string { return "carol" }})
	token := w.token("groups/AUTH_EVENTS/user-notifications")

	status, _, _ := w.post("groups/AUTH_EVENTS/user-notifications/pause", url.Values{"for": {"30m"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	h := a.r.Health(testCtx(t))
	require.Len(t, h.Groups, 1)
	assert.True(t, h.Ready)
	assert.WithinDuration(t, time.Now().Add(30*time.Minute), h.Groups[0].PausedUntil, time.Minute)
	_, body := w.get("")
	assert.Contains(t, body, `data-state="paused"`)

	status, _, _ = w.post("groups/AUTH_EVENTS/user-notifications/resume", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, status)
	assert.True(t, a.r.Health(testCtx(t)).Groups[0].PausedUntil.IsZero())

	_, err := srv.JS.CreateConsumer(testCtx(t), "AUTH_EVENTS", natsjs.ConsumerConfig{Durable: "not-mine", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	status, _, body = w.post("groups/AUTH_EVENTS/not-mine/pause", url.Values{"for": {"30m"}, "csrf": {w.token("groups/AUTH_EVENTS/not-mine")}})
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Contains(t, body, "no such group")
	assert.False(t, consumerInfo(t, srv, "not-mine").Paused)
}
