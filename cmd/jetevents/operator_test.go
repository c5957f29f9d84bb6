package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

func TestConsumers_show_pending_waiting_last_active_and_stalled(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	publishEvent(t, srv, "auth.user.deleted", "user.deleted")
	// busy: a durable that has a message in hand, just delivered.
	_, err := jetstream.Apply(ctx, srv.JS,
		jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "busy", FilterSubjects: []string{"auth.user.>"}},
		jetstream.ConsumerSpec{Stream: "AUTH_EVENTS", Durable: "idle", DeliverPolicy: natsjs.DeliverNewPolicy})
	require.NoError(t, err)
	busy, err := srv.JS.Consumer(ctx, "AUTH_EVENTS", "busy")
	require.NoError(t, err)
	_, err = busy.Next(natsjs.FetchMaxWait(5 * time.Second))
	require.NoError(t, err)

	// A day is far longer than this test: "busy" was active within it, and
	// user-notifications never was.
	out := mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-server", srv.URL, "-stalled-after", "24h")
	rows := map[string][]string{}
	for _, l := range lines(out) {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "AUTH_EVENTS" {
			rows[f[1]] = f
		}
	}
	// STREAM CONSUMER FILTER PENDING ACK-PENDING REDELIVERED WAITING LAST-ACTIVE STALLED MAX-DELIVER PAUSED-UNTIL
	require.Contains(t, rows, "busy", out)
	assert.Equal(t, []string{"auth.user.>", "1", "1", "0", "0"}, rows["busy"][2:7])
	assert.Regexp(t, `^\d+s$`, rows["busy"][7], "last active seconds ago")
	assert.Equal(t, []string{"ago", "no"}, rows["busy"][8:10])
	assert.Equal(t, []string{"(all)", "0", "0", "0", "0", "never", "no", "unlimited", "-"}, rows["idle"][2:], "nothing waits: not stalled")
	assert.Equal(t, []string{"auth.user.>", "2", "0", "0", "0", "never", "yes", "unlimited", "-"}, rows["user-notifications"][2:])
	assert.Contains(t, out, "stalled: AUTH_EVENTS/user-notifications: events wait but nothing pulled them for 24h0m0s; is the service that consumes them running?")

	t.Run("-json has numbers and the flag", func(t *testing.T) {
		out := mustRun(t, ctx, "consumers", "AUTH_EVENTS", "-server", srv.URL, "-json")
		var got []map[string]any
		for _, l := range lines(out) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &m), l)
			got = append(got, m)
		}
		require.Len(t, got, 3)
		un := got[2]
		assert.Equal(t, "user-notifications", un["name"])
		assert.Equal(t, float64(2), un["pending"])
		assert.Equal(t, true, un["stalled"])
		assert.NotContains(t, un, "last_active")
		assert.Contains(t, got[0], "last_active")
	})
	t.Run("one consumer in detail", func(t *testing.T) {
		out := mustRun(t, ctx, "consumers", "AUTH_EVENTS", "user-notifications", "-server", srv.URL)
		assert.Regexp(t, `filter:\s+auth.user.>`, out)
		assert.Regexp(t, `max deliver:\s+unlimited`, out)
		assert.Regexp(t, `pending:\s+2`, out)
		assert.Regexp(t, `stalled:\s+yes: events wait`, out)
	})
	t.Run("every stream when none is named", func(t *testing.T) {
		out := mustRun(t, ctx, "consumers", "-server", srv.URL)
		assert.Contains(t, out, "user-notifications")
		assert.Contains(t, out, "busy")
	})
	t.Run("a stream without consumers", func(t *testing.T) {
		out := mustRun(t, ctx, "consumers", "DLQ", "-server", srv.URL)
		assert.Contains(t, out, "no consumers on stream DLQ")
	})
	t.Run("unknown stream", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "consumers", "NOPE", "-server", srv.URL)
		require.ErrorIs(t, err, errNotFound)
		require.ErrorIs(t, err, natsjs.ErrStreamNotFound)
		assert.Equal(t, "consumers: stream NOPE does not exist (the server has AUTH_EVENTS, DLQ): pick one with the STREAM argument, or create it with 'jetevents streams apply -f FILE'", err.Error())
	})
	t.Run("unknown consumer", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "consumers", "AUTH_EVENTS", "nope", "-server", srv.URL)
		require.ErrorIs(t, err, errNotFound)
		require.ErrorIs(t, err, natsjs.ErrConsumerNotFound)
		assert.Equal(t, "consumers: stream AUTH_EVENTS has no consumer nope (it has busy, idle, user-notifications): check the name with 'jetevents consumers AUTH_EVENTS'; a service creates its consumer when it starts", err.Error())
	})
}

func TestPublish_goes_through_the_librarys_publisher(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	out := mustRun(t, ctx, "publish", "auth.user.created", "-server", srv.URL,
		"-type", "user.created", "-data", `{"user_id":12345,"email":"user@example.com"}`,
		"-source", "auth-service", "-org", "org-123", "-id", "evt-1", "-correlation-id", "req-9")
	assert.Equal(t, "published user.created event evt-1 on auth.user.created: stream AUTH_EVENTS seq 1\n", out)

	raw, err := getMsg(t, srv, "AUTH_EVENTS", 1)
	require.NoError(t, err)
	assert.Equal(t, "evt-1", raw.Header.Get("Nats-Msg-Id"))
	assert.Equal(t, "user.created", raw.Header.Get("ce-type"))
	assert.Equal(t, "req-9", raw.Header.Get("ce-correlationid"))
	var env map[string]any
	require.NoError(t, json.Unmarshal(raw.Data, &env))
	assert.Equal(t, "auth-service", env["source"])
	assert.Equal(t, "org-123", env["organization_id"])
	assert.Equal(t, map[string]any{"user_id": float64(12345), "email": "user@example.com"}, env["data"])

	t.Run("the same id again is stored once", func(t *testing.T) {
		out := mustRun(t, ctx, "publish", "auth.user.created", "-server", srv.URL, "-type", "user.created", "-id", "evt-1")
		assert.Contains(t, out, "event evt-1 (user.created) was already stored in AUTH_EVENTS at seq 1 within its duplicates window: not stored again")
		assert.Equal(t, uint64(1), streamMsgs(t, srv, "AUTH_EVENTS"))
	})
	t.Run("data from a file", func(t *testing.T) {
		f := writeSpec(t, `{"from":"file"}`)
		mustRun(t, ctx, "publish", "auth.user.deleted", "-server", srv.URL, "-type", "user.deleted", "-data", "@"+f)
		raw, err := getMsg(t, srv, "AUTH_EVENTS", 2)
		require.NoError(t, err)
		assert.Contains(t, string(raw.Data), `"data":{"from":"file"}`)
	})
	tests := []struct {
		name string
		args []string
		kind error
		want string
	}{
		{"no stream stores the subject", []string{"billing.invoice.paid", "-type", "invoice.paid"}, errNotFound,
			"publish: no stream stores subject billing.invoice.paid, so nothing would keep the event: add a stream whose subjects match it to your spec file and run 'jetevents streams apply -f FILE'"},
		{"a wildcard subject", []string{"auth.user.*", "-type", "user.created"}, errUsage,
			`publish: "auth.user.*" is not a subject one can publish on (no wildcards, spaces or empty tokens): publish on a concrete subject, e.g. auth.user.created`},
		{"no type", []string{"auth.user.created"}, errUsage, "publish: -type is required (e.g. -type user.created)"},
		{"no subject", []string{"-type", "user.created"}, errUsage, "publish: give the SUBJECT to publish on"},
		{"data that is not JSON", []string{"auth.user.created", "-type", "user.created", "-data", "{user_id: 1}"}, errUsage,
			"publish: -data is not valid JSON: {user_id: 1}"},
		{"an invalid type", []string{"auth.user.created", "-type", "user created"}, errUsage, "publish: the event is invalid: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, append([]string{"publish", "-server", srv.URL}, tt.args...)...)
			require.ErrorIs(t, err, tt.kind)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}
}

// TestTail_refuses_what_it_cannot_deliver_and_leaves_no_consumer: a
// subject its stream does not store would wait forever, so tail says
// which stream stores it; -n is validated; no consumer outlives tail.
func TestTail_refuses_what_it_cannot_deliver_and_leaves_no_consumer(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	_, err := jetstream.Apply(ctx, srv.JS, jetstream.StreamSpec{Name: "BILLING", Subjects: []string{"billing.>"}})
	require.NoError(t, err)
	publishEvent(t, srv, "auth.user.created", "user.created")
	publishEvent(t, srv, "billing.invoice.paid", "invoice.paid")

	t.Run("-subject finds its stream", func(t *testing.T) {
		out, errOut, err := runCmd(t, ctx, "tail", "-server", srv.URL, "-subject", "billing.>", "-all", "-n", "1")
		require.NoError(t, err)
		assert.Contains(t, out, `"subject":"billing.invoice.paid"`)
		assert.Equal(t, "tailing all events of BILLING on billing.> (stopping after 1)\n", errOut)
	})
	tests := []struct {
		name string
		args []string
		kind error
		want string
	}{
		{"a stream that does not store the subject", []string{"-stream", "AUTH_EVENTS", "-subject", "billing.>"}, errUsage,
			"tail: stream AUTH_EVENTS does not store billing.> (it stores auth.>), so tail would wait forever: use -stream BILLING"},
		{"a subject no stream stores", []string{"-subject", "orders.>"}, errNotFound,
			"tail: no stream stores orders.> (the server has AUTH_EVENTS on auth.>, BILLING on billing.>, DLQ on dlq.>): check the subject"},
		{"a subject several streams store", []string{"-subject", ">"}, errUsage,
			"tail: > is stored by several streams: AUTH_EVENTS, BILLING, DLQ: pick one with -stream"},
		{"an unknown stream", []string{"-stream", "NOPE"}, errNotFound,
			"tail: stream NOPE does not exist (the server has AUTH_EVENTS, BILLING, DLQ): pick one with -stream"},
		{"a negative -n", []string{"-n", "-1"}, errUsage, "tail: -n -1 is negative (0 means until interrupted): see 'jetevents tail -h'"},
		{"a malformed subject", []string{"-subject", "auth..user"}, errUsage, `tail: -subject "auth..user": empty token`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, append([]string{"tail", "-server", srv.URL}, tt.args...)...)
			require.ErrorIs(t, err, tt.kind)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}

	t.Run("no consumer is left behind", func(t *testing.T) {
		mustRun(t, ctx, "tail", "-server", srv.URL, "-all", "-n", "1")
		// A tail interrupted while waiting for new events.
		tctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		errOut := &syncBuffer{}
		go func() { done <- run(tctx, []string{"tail", "-server", srv.URL}, &bytes.Buffer{}, errOut) }()
		require.Eventually(t, func() bool { return countConsumers(t, srv, "AUTH_EVENTS") == 2 }, 10*time.Second, 10*time.Millisecond,
			"the tail's consumer exists while it runs")
		cancel()
		require.NoError(t, <-done)
		assert.Equal(t, 1, countConsumers(t, srv, "AUTH_EVENTS"), "only the durable is left")
		assert.Equal(t, 0, countConsumers(t, srv, "BILLING"))
	})
}

func countConsumers(t *testing.T, srv *eventstest.Server, stream string) int {
	t.Helper()
	st, err := srv.JS.Stream(testCtx(t), stream)
	require.NoError(t, err)
	return st.CachedInfo().State.Consumers
}

func TestDLQShow_prints_one_dead_letter_in_full(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	seq := sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("db down"), nil)
	_, err := srv.JS.Publish(ctx, "auth.user.updated", []byte("not an event"))
	require.NoError(t, err)
	undecodable := sendDeadLetter(t, srv, 2, middleware.ReasonUnmarshal, errors.New("bad payload"), nil)

	out := mustRun(t, ctx, "dlq", "show", itoa(seq), "-server", srv.URL)
	for _, want := range []string{
		"dead letter:       DLQ seq 1 on dlq.auth.user.created, stored ",
		"reason:            max_deliver",
		"error:             db down",
		"original:          auth.user.created (stream AUTH_EVENTS seq 1)",
		"consumer:          user-notifications, 5 deliveries",
		"handler:           user-created",
		"msg id:            " + e.ID,
		"headers:\n",
		"  Dlq-Reason: max_deliver\n",
		"  ce-id: " + e.ID + "\n",
		`"type": "user.created"`,
		"replay with: jetevents dlq replay 1\n",
	} {
		assert.Contains(t, out, want)
	}

	out = mustRun(t, ctx, "dlq", "show", itoa(undecodable), "-server", srv.URL)
	assert.Contains(t, out, "event: not decodable: ")
	assert.Contains(t, out, "  not an event\n")

	t.Run("-json", func(t *testing.T) {
		var dl map[string]any
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, ctx, "dlq", "show", "1", "-json", "-server", srv.URL)), &dl))
		assert.Equal(t, float64(1), dl["stream_seq"])
		assert.Equal(t, float64(5), dl["deliveries"])
		assert.Equal(t, []any{"max_deliver"}, dl["headers"].(map[string]any)["Dlq-Reason"])
	})
	t.Run("a sequence that is not there", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "dlq", "show", "999", "-server", srv.URL)
		require.ErrorIs(t, err, errNotFound)
		require.ErrorIs(t, err, natsjs.ErrMsgNotFound)
		assert.Equal(t, "dlq show: DLQ has no dead letter with sequence 999 (it holds 2 dead letters, sequences 1 to 2; replayed and purged ones are gone): list them with 'jetevents dlq list'", err.Error())
	})
	t.Run("not a number", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "dlq", "show", "first", "-server", srv.URL)
		require.ErrorIs(t, err, errUsage)
		assert.Contains(t, err.Error(), `"first" is not a sequence number`)
	})
}

func TestDLQList_table_and_json_types(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("db down"), nil)

	out := mustRun(t, ctx, "dlq", "list", "-server", srv.URL)
	assert.Regexp(t, `SEQ\s+STORED\s+REASON\s+ORIGINAL SUBJECT\s+STREAM SEQ\s+DELIVERIES\s+HANDLER\s+ERROR`, out)
	assert.Regexp(t, `\n1\s+\d{4}-\d\d-\d\dT\S+Z\s+max_deliver\s+auth.user.created\s+1\s+5\s+user-created\s+db down\n`, out)
	assert.Contains(t, out, "1 dead letter; 'jetevents dlq show SEQ' shows one in full, 'jetevents dlq replay SEQ' replays it")

	var dl map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, ctx, "dlq", "list", "-json", "-server", srv.URL)), &dl))
	for _, k := range []string{"seq", "stream_seq", "deliveries"} {
		assert.IsType(t, float64(0), dl[k], "%s is a JSON number", k)
	}

	t.Run("a subject without the dlq. prefix", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "dlq", "list", "-subject", "auth.user.created", "-server", srv.URL)
		require.ErrorIs(t, err, errUsage)
		assert.Equal(t, "dlq list: DLQ holds no dead letters on auth.user.created (it stores dlq.>): dead letters are stored on the original subject with its prefix: use -subject dlq.auth.user.created", err.Error())
	})
	t.Run("a missing dead-letter stream", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "dlq", "list", "-stream", "DEAD", "-server", srv.URL)
		require.ErrorIs(t, err, errNotFound)
		assert.Equal(t, "dlq list: dead-letter stream DEAD does not exist (the server has AUTH_EVENTS, DLQ): create it with 'jetevents streams apply -f scripts/streams.yaml' (which declares DLQ on dlq.>), or name yours with -stream", err.Error())
	})
}

// TestDLQReplay_all_reports_progress_and_a_summary: a long replay prints
// progress on stderr every -progress dead letters and one summary line.
func TestDLQReplay_all_reports_progress_and_a_summary(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	for i := uint64(1); i <= 5; i++ {
		publishEvent(t, srv, "auth.user.created", "user.created")
		sendDeadLetter(t, srv, i, middleware.ReasonMaxDeliver, errors.New("boom"), nil)
	}
	out, errOut, err := runCmd(t, ctx, "dlq", "replay", "-all", "-progress", "2", "-server", srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "replayed 2 of 5 (40%)\nreplayed 4 of 5 (80%)\n", errOut)
	assert.Equal(t, "replayed 5 of 5 dead letters from DLQ; deleted from DLQ\n", out)
	assert.Equal(t, uint64(10), streamMsgs(t, srv, "AUTH_EVENTS"))
	assert.Equal(t, uint64(0), streamMsgs(t, srv, "DLQ"))

	t.Run("a failure stops the replay with a summary and the next step", func(t *testing.T) {
		// Messages 6 and 7 are the replays; dead letters of 1 to 5 again
		// would be de-duplicated by DLQ (their Nats-Msg-Id is seen).
		for i := uint64(6); i <= 7; i++ {
			sendDeadLetter(t, srv, i, middleware.ReasonMaxDeliver, errors.New("boom"), nil)
		}
		require.NoError(t, srv.JS.DeleteStream(ctx, "AUTH_EVENTS"))
		out, _, err := runCmd(t, ctx, "dlq", "replay", "-all", "-server", srv.URL)
		require.ErrorIs(t, err, natsjs.ErrNoStreamResponse)
		assert.Equal(t, "stopped after replaying 0 of 2 dead letters from DLQ; deleted from DLQ\n", out)
		assert.Equal(t, "dlq replay: replay of DLQ seq 6 to auth.user.created failed: no stream stores that subject any more (the dead letter is kept): create the stream again ('jetevents streams apply -f FILE'); then run the same command again (what was replayed is done)", err.Error())
	})
}

// TestErrors_are_one_line_without_double_prefixes: every failure is
// "jetevents: <command>: <what happened>: <what to do>", never with the
// library's sentinel texts stacked or a Go type name.
func TestErrors_are_one_line_without_double_prefixes(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"spec file error", []string{"streams", "apply", "-f", writeSpec(t, "streams:\n  - name: X\n    subject: [x.>]\n")},
			`streams apply: ` + "%s" + `: line 3: streams[0] X: unknown key "subject" (did you mean "subjects"?)`},
		{"spec file duration in days is accepted, a bad one explained", []string{"streams", "apply", "-f", writeSpec(t, "streams:\n  - name: X\n    subjects: [x.>]\n    max_age: 30days\n")},
			`streams apply: ` + "%s" + `: line 4: streams[0] X max_age: "30days" is not a duration: write it like 90s, 15m, 720h or 30d`},
		{"overlapping subjects name the other stream", []string{"streams", "apply", "-f", writeSpec(t, "streams:\n  - name: USERS\n    subjects: [auth.user.>]\n")},
			"streams apply: cannot create stream USERS: its subjects overlap with stream AUTH_EVENTS (auth.user.> overlaps auth.>), and a message can be stored by one stream only: narrow the subjects of one of them, or make one source the other"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate": run 'jetevents -h' for the commands`},
		{"flag before the command", []string{"-server", srv.URL, "streams", "list"}, "-server before the command: flags go after it, e.g. jetevents streams list -server ..."},
		{"unknown flag", []string{"dlq", "list", "-bogus"}, "dlq list: flag provided but not defined: -bogus: see 'jetevents dlq list -h'"},
		{"no subcommand", []string{"dlq"}, "dlq: a subcommand is needed (list, show, replay or purge): run 'jetevents dlq -h'"},
		{"unknown subcommand", []string{"streams", "delete"}, `streams: unknown subcommand "delete" (apply or list): run 'jetevents streams -h'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(ctx, append(tt.args, serverFlag(tt.args, srv.URL)...), &bytes.Buffer{}, &stderr)
			require.Error(t, err)
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, tt.args[3])
			}
			assert.Equal(t, want, err.Error())
			for _, bad := range []string{"invalid jetstream configuration", "invalid stream or consumer spec:", "jetstream.", "Doc", "nats: API error", "\n"} {
				assert.NotContains(t, err.Error(), bad)
			}
			assert.Empty(t, stderr.String(), "no usage dump, no extra line")
		})
	}
	t.Run("1 spec, not 1 specs", func(t *testing.T) {
		out := mustRun(t, ctx, "streams", "apply", "-server", srv.URL, "-f", writeSpec(t, "streams:\n  - name: ONE\n    subjects: [one.>]\n    max_age: 30d\n"))
		assert.Contains(t, out, "1 spec: 1 created, 0 updated, 0 unchanged")
		st, err := srv.JS.Stream(ctx, "ONE")
		require.NoError(t, err)
		assert.Equal(t, 30*24*time.Hour, st.CachedInfo().Config.MaxAge)
	})
	t.Run("no arguments: the usage and status 2, without a stray line", func(t *testing.T) {
		exe, err := os.Executable()
		require.NoError(t, err)
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), runAsMainEnv+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 2, ee.ExitCode())
		assert.True(t, strings.HasPrefix(stderr.String(), "usage: jetevents <command> [flags]\n"), stderr.String())
	})
}

// serverFlag is -server url for commands that connect (not for the
// command-line errors of the table, which must fail before).
func serverFlag(args []string, url string) []string {
	if len(args) > 1 && args[0] == "streams" && args[1] == "apply" {
		return []string{"-server", url}
	}
	return nil
}

// TestNoJetStream_every_subcommand_says_how_to_enable_it: against a real
// nats-server started without JetStream (no responders on the JetStream API,
// nor for a publish), every subcommand that connects fails with
// errNoJetStream (and the library's ErrNoJetStream where the library was
// asked) and one line saying what to do, not a missing stream nor a raw
// "no responders".
func TestNoJetStream_every_subcommand_says_how_to_enable_it(t *testing.T) {
	srv := eventstest.NewServerWithConfig(t, embedded.Config{NoJetStream: true})
	for _, args := range [][]string{
		{"streams", "apply", "-f", specFile},
		{"streams", "list"},
		{"consumers"},
		{"consumers", "AUTH_EVENTS", "user-notifications"},
		{"consumers", "pause", "user-notifications", "-for", "1h"},
		{"consumers", "resume", "user-notifications", "-stream", "AUTH_EVENTS"},
		{"publish", "auth.user.created", "-type", "user.created", "-data", `{"user_id":1}`},
		{"tail", "-subject", "auth.>"},
		{"dlq", "list"},
		{"dlq", "show", "1"},
		{"dlq", "replay", "1"},
		{"dlq", "replay", "-all"},
		{"dlq", "purge", "-yes"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, err := runCmd(t, testCtx(t), append(args, "-server", srv.URL)...)
			require.ErrorIs(t, err, errNoJetStream)
			assert.NotErrorIs(t, err, transport.ErrNoStream, "no stream can exist without JetStream")
			assert.Contains(t, err.Error(), "no JetStream answered on "+srv.URL)
			assert.Contains(t, err.Error(), "start nats-server with JetStream (-js)")
			var stderr bytes.Buffer
			assert.Equal(t, 1, exitCode(err, &stderr))
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %s", stderr.String())
		})
	}
}
