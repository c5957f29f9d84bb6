package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// runAsMainEnv makes the test binary behave as the jetevents command, so that
// tests can exec it (the setup script, exit codes) without a `go build`.
const runAsMainEnv = "JETEVENTS_TEST_RUN_MAIN"

// TestMain isolates the tests from the machine: no $NATS_URL or
// $NATS_CONTEXT, and the XDG folders (nats contexts, the server's default
// store) are empty temporary ones. Tests that need them set their own.
func TestMain(m *testing.M) {
	if os.Getenv(runAsMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	tmp, err := os.MkdirTemp("", "jetevents-cmd-test-*")
	if err != nil {
		panic(err)
	}
	os.Unsetenv("NATS_URL")
	os.Unsetenv("NATS_CONTEXT")
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(tmp, "config"))
	os.Setenv("XDG_DATA_HOME", filepath.Join(tmp, "data"))
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

const specFile = "../../scripts/streams.yaml"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runCmd runs the command in-process and returns its stdout and stderr.
func runCmd(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// mustRun runs the command and fails the test on an error.
func mustRun(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, errOut, err := runCmd(t, ctx, args...)
	require.NoError(t, err, "jetevents %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out
}

// newServer starts an embedded server with the streams of scripts/streams.yaml.
func newServer(t *testing.T) *eventstest.Server {
	t.Helper()
	srv := eventstest.NewServer(t)
	specs, err := jetstream.LoadSpecs(specFile)
	require.NoError(t, err)
	_, err = jetstream.Apply(testCtx(t), srv.JS, specs.All()...)
	require.NoError(t, err)
	return srv
}

func publishEvent(t *testing.T, srv *eventstest.Server, subject, typ string) *envelope.Event {
	t.Helper()
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	e := envelope.NewEvent(typ, "auth-service", "org-123",
		time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), map[string]interface{}{"user_id": 12345, "email": "user@example.com"})
	require.NoError(t, pub.Publish(testCtx(t), subject, e))
	return e
}

func streamMsgs(t *testing.T, srv *eventstest.Server, stream string) uint64 {
	t.Helper()
	st, err := srv.JS.Stream(testCtx(t), stream)
	require.NoError(t, err)
	return st.CachedInfo().State.Msgs
}

func getMsg(t *testing.T, srv *eventstest.Server, stream string, seq uint64) (*natsjs.RawStreamMsg, error) {
	t.Helper()
	st, err := srv.JS.Stream(testCtx(t), stream)
	require.NoError(t, err)
	return st.GetMsg(testCtx(t), seq)
}

var dlqTime = time.Date(2024, 1, 15, 11, 0, 0, 0, time.UTC)

// sendDeadLetter dead-letters the AUTH_EVENTS message at seq through the
// middleware's DeadLetterer, as the router does after the last delivery, and
// returns its sequence in the DLQ stream. extra headers are added to the
// original's, as if its publisher had set them.
func sendDeadLetter(t *testing.T, srv *eventstest.Server, seq uint64, reason string, cause error, extra nats.Header) uint64 {
	t.Helper()
	raw, err := getMsg(t, srv, "AUTH_EVENTS", seq)
	require.NoError(t, err)
	for k, vs := range extra {
		raw.Header[k] = vs
	}
	tr, err := jetstream.NewTransport(srv.Conn, jetstream.TransportConfig{DeadLetterStream: "DLQ"})
	require.NoError(t, err)
	dl, err := middleware.NewDeadLetterer(tr, middleware.DeadLetterConfig{Stream: "DLQ", Clock: eventstest.NewClock(dlqTime)})
	require.NoError(t, err)
	err = dl.Send(testCtx(t), middleware.Record{
		Subject: raw.Subject, Header: raw.Header, Data: raw.Data,
		Stream: "AUTH_EVENTS", Consumer: "user-notifications", StreamSeq: seq, Deliveries: 5,
		Handler: "user-created", Reason: reason, Err: cause,
	})
	require.NoError(t, err)
	s, err := srv.JS.Stream(testCtx(t), "DLQ")
	require.NoError(t, err)
	info, err := s.Info(testCtx(t))
	require.NoError(t, err)
	return info.State.LastSeq
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

func TestRun_usage_errors(t *testing.T) {
	ctx := testCtx(t)
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"streams without subcommand", []string{"streams"}},
		{"streams unknown subcommand", []string{"streams", "delete"}},
		{"streams apply without -f", []string{"streams", "apply"}},
		{"stray argument", []string{"streams", "apply", "-f", specFile, "extra"}},
		{"unknown flag", []string{"dlq", "list", "-bogus"}},
		{"dlq without subcommand", []string{"dlq"}},
		{"dlq replay without -seq or -all", []string{"dlq", "replay"}},
		{"dlq replay with -seq and -all", []string{"dlq", "replay", "-seq", "1", "-all"}},
		{"dlq replay -seq with -subject", []string{"dlq", "replay", "-seq", "1", "-subject", "dlq.>"}},
		{"dlq list negative -n", []string{"dlq", "list", "-n", "-1", "-server", "nats://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, tt.args...)
			require.ErrorIs(t, err, errUsage)
		})
	}
}

func TestStreamsApply_twice_reports_unchanged(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx := testCtx(t)

	out := mustRun(t, ctx, "streams", "apply", "-server", srv.URL, "-f", specFile)
	assert.Equal(t, []string{
		"stream AUTH_EVENTS: created",
		"stream DLQ: created",
		"consumer AUTH_EVENTS/user-notifications: created",
		"3 specs: 3 created, 0 updated, 0 unchanged",
	}, lines(out))

	out = mustRun(t, ctx, "streams", "apply", "-server", srv.URL, "-f", specFile)
	assert.Equal(t, []string{
		"stream AUTH_EVENTS: unchanged",
		"stream DLQ: unchanged",
		"consumer AUTH_EVENTS/user-notifications: unchanged",
		"3 specs: 0 created, 0 updated, 3 unchanged",
	}, lines(out))

	info, err := srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	assert.Equal(t, []string{"auth.>"}, info.CachedInfo().Config.Subjects)
	_, err = srv.JS.Consumer(ctx, "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)
}

func TestStreamsApply_reports_updated_fields(t *testing.T) {
	srv := newServer(t)
	spec, err := os.ReadFile(specFile)
	require.NoError(t, err)
	changed := strings.Replace(string(spec), "max_deliver: -1", "max_deliver: 7", 1)
	require.NotEqual(t, string(spec), changed)
	file := filepath.Join(t.TempDir(), "streams.yaml")
	require.NoError(t, os.WriteFile(file, []byte(changed), 0o600))

	out := mustRun(t, testCtx(t), "streams", "apply", "-server", srv.URL, "-f", file)
	assert.Contains(t, out, "consumer AUTH_EVENTS/user-notifications: updated (max_deliver: unlimited -> 7)")
	assert.Contains(t, out, "3 specs: 0 created, 1 updated, 2 unchanged")
}

func TestStreamsApply_failures_return_typed_errors(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	spec, err := os.ReadFile(specFile)
	require.NoError(t, err)
	// Storage cannot change once a stream exists: the server refuses.
	memory := strings.Replace(string(spec), "storage: file", "storage: memory", 1)

	tests := []struct {
		name    string
		file    string
		want    error
		wantOut string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), envelope.ErrInvalidConfig, ""},
		{"unknown key", write("typo.yaml", "streams:\n  - name: X\n    subjectz: [x.>]\n"), jetstream.ErrInvalidSpec, ""},
		{"invalid name", write("name.yaml", "streams:\n  - name: a.b\n    subjects: [x.>]\n"), transport.ErrInvalidName, ""},
		{"server refuses a change", write("memory.yaml", memory), jetstream.ErrApply, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(t, testCtx(t), "streams", "apply", "-server", srv.URL, "-f", tt.file)
			require.ErrorIs(t, err, tt.want)
			assert.NotContains(t, out, "specs:", "no summary after a failure")
		})
	}
}

func TestStreamsApply_unreachable_server_fails(t *testing.T) {
	_, _, err := runCmd(t, testCtx(t), "streams", "apply", "-server", "nats://127.0.0.1:1", "-f", specFile)
	require.ErrorIs(t, err, nats.ErrNoServers)
}

func TestStreamsList_shows_streams_counts_and_consumers(t *testing.T) {
	srv := newServer(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	publishEvent(t, srv, "auth.user.deleted", "user.deleted")
	publishEvent(t, srv, "auth.session.opened", "session.opened") // not on the consumer's filter

	out := mustRun(t, testCtx(t), "streams", "list", "-server", srv.URL)
	fields := map[string][]string{}
	for _, l := range lines(out) {
		if f := strings.Fields(l); len(f) > 0 {
			fields[f[0]+" "+f[1]] = f
		}
	}
	require.Contains(t, fields, "AUTH_EVENTS auth.>", out)
	// STREAM SUBJECTS STORAGE REPLICAS MESSAGES BYTES(2 fields) FIRST LAST CONSUMERS
	assert.Equal(t, []string{"AUTH_EVENTS", "auth.>", "file", "1", "3"}, fields["AUTH_EVENTS auth.>"][:5])
	assert.Equal(t, "1", fields["AUTH_EVENTS auth.>"][9], "consumer count")
	require.Contains(t, fields, "DLQ dlq.>", out)
	assert.Equal(t, "0", fields["DLQ dlq.>"][4])
	// STREAM CONSUMER FILTER PENDING ACK-PENDING REDELIVERED WAITING LAST-ACTIVE STALLED MAX-DELIVER PAUSED-UNTIL
	require.Contains(t, fields, "AUTH_EVENTS user-notifications", out)
	assert.Equal(t, []string{"AUTH_EVENTS", "user-notifications", "auth.user.>", "2", "0", "0", "0", "never", "yes", "unlimited", "-"},
		fields["AUTH_EVENTS user-notifications"])
}

func TestStreamsList_without_streams_says_so(t *testing.T) {
	srv := eventstest.NewServer(t)
	out := mustRun(t, testCtx(t), "streams", "list", "-server", srv.URL)
	assert.Contains(t, out, "no streams")
}

func TestTail_prints_published_event(t *testing.T) {
	srv := newServer(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")

	out := mustRun(t, testCtx(t), "tail", "-server", srv.URL, "-stream", "AUTH_EVENTS", "-all", "-n", "1")
	require.Len(t, lines(out), 1)
	var l struct {
		Subject string          `json:"subject"`
		Seq     uint64          `json:"seq"`
		Event   json.RawMessage `json:"event"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &l))
	assert.Equal(t, "auth.user.created", l.Subject)
	assert.Equal(t, uint64(1), l.Seq)
	want, err := e.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(l.Event))
	assert.Equal(t, uint64(0), mustConsumerPending(t, srv), "tail must not touch the durable's acks")
}

func mustConsumerPending(t *testing.T, srv *eventstest.Server) uint64 {
	t.Helper()
	c, err := srv.JS.Consumer(testCtx(t), "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)
	return uint64(c.CachedInfo().NumAckPending)
}

func dlqLines(t *testing.T, out string) []deadLetter {
	t.Helper()
	var dls []deadLetter
	for _, l := range lines(out) {
		if l == "" {
			continue
		}
		var dl deadLetter
		require.NoError(t, json.Unmarshal([]byte(l), &dl), l)
		dls = append(dls, dl)
	}
	return dls
}

func TestDLQList_prints_headers_and_decoded_event(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	_, err := srv.JS.Publish(ctx, "auth.user.updated", []byte("not an event"))
	require.NoError(t, err)
	seq1 := sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("db down\nretry later"), nil)
	seq2 := sendDeadLetter(t, srv, 2, middleware.ReasonUnmarshal, errors.New("bad payload"), nil)

	out := mustRun(t, ctx, "dlq", "list", "-server", srv.URL, "-json")
	dls := dlqLines(t, out)
	require.Len(t, dls, 2, out)

	first := dls[0]
	assert.Equal(t, seq1, first.Seq)
	assert.Equal(t, "dlq.auth.user.created", first.Subject)
	assert.Equal(t, "auth.user.created", first.OriginalSubject)
	assert.Equal(t, "AUTH_EVENTS", first.Stream)
	assert.Equal(t, "user-notifications", first.Consumer)
	assert.Equal(t, uint64(1), first.StreamSeq)
	assert.Equal(t, 5, first.Deliveries)
	assert.Equal(t, "user-created", first.Handler)
	assert.Equal(t, middleware.ReasonMaxDeliver, first.Reason)
	assert.Equal(t, "db down retry later", first.Error)
	assert.Equal(t, dlqTime.Format(time.RFC3339Nano), first.Time)
	assert.Equal(t, e.ID, first.MsgID)
	assert.Empty(t, first.DecodeError)
	want, err := e.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(first.Event))

	second := dls[1]
	assert.Equal(t, seq2, second.Seq)
	assert.Equal(t, "auth.user.updated", second.OriginalSubject)
	assert.Equal(t, middleware.ReasonUnmarshal, second.Reason)
	assert.Empty(t, second.Event)
	assert.NotEmpty(t, second.DecodeError)

	t.Run("-n limits", func(t *testing.T) {
		dls := dlqLines(t, mustRun(t, ctx, "dlq", "list", "-server", srv.URL, "-n", "1", "-json"))
		require.Len(t, dls, 1)
		assert.Equal(t, seq1, dls[0].Seq)
	})
	t.Run("-subject filters", func(t *testing.T) {
		dls := dlqLines(t, mustRun(t, ctx, "dlq", "list", "-server", srv.URL, "-subject", "dlq.auth.user.updated", "-json"))
		require.Len(t, dls, 1)
		assert.Equal(t, seq2, dls[0].Seq)
	})
	t.Run("reading acks nothing and removes nothing", func(t *testing.T) {
		assert.Equal(t, uint64(2), streamMsgs(t, srv, "DLQ"))
	})
	t.Run("unknown stream", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "dlq", "list", "-server", srv.URL, "-stream", "NOPE")
		require.ErrorIs(t, err, natsjs.ErrStreamNotFound)
	})
}

func TestDLQReplay_republishes_original_and_deletes_dead_letter(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	orig, err := getMsg(t, srv, "AUTH_EVENTS", 1)
	require.NoError(t, err)
	// Publish-time instructions of the original publisher that must not be
	// replayed: they would make the replay fail (expected last sequence) or
	// purge the subject (rollup).
	dseq := sendDeadLetter(t, srv, 1, middleware.ReasonPermanent, errors.New("boom"), nats.Header{
		"Nats-Expected-Last-Sequence": {"0"},
		"Nats-Rollup":                 {"sub"},
	})
	waitConsumerPending(t, srv, 1)

	out := mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1")
	assert.Contains(t, out, "replayed DLQ seq 1 -> auth.user.created (stream AUTH_EVENTS seq 2")
	assert.Contains(t, out, "deleted from DLQ")

	// The original message is back on its subject in AUTH_EVENTS...
	require.Equal(t, uint64(2), streamMsgs(t, srv, "AUTH_EVENTS"))
	replayed, err := getMsg(t, srv, "AUTH_EVENTS", 2)
	require.NoError(t, err)
	assert.Equal(t, "auth.user.created", replayed.Subject)
	assert.Equal(t, orig.Data, replayed.Data)
	for k, vs := range orig.Header {
		if k == nats.MsgIdHdr {
			continue
		}
		assert.Equal(t, vs, replayed.Header[k], "original header %s", k)
	}
	assert.Equal(t, "replay:DLQ:1:", replayed.Header.Get(nats.MsgIdHdr)[:len("replay:DLQ:1:")])
	for k := range replayed.Header {
		assert.False(t, strings.HasPrefix(k, "Dlq-"), "dead-letter header %s replayed", k)
	}
	assert.Empty(t, replayed.Header.Get("Nats-Rollup"))
	assert.Empty(t, replayed.Header.Get("Nats-Expected-Last-Sequence"))
	_, got, err := marshaler.Default().DecodeNATS(replayed.Header, replayed.Data)
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID)
	// ...where the durable consumer will deliver it again...
	waitConsumerPending(t, srv, 2)
	// ...and the dead letter is gone.
	_, err = getMsg(t, srv, "DLQ", dseq)
	require.ErrorIs(t, err, natsjs.ErrMsgNotFound)
	assert.Equal(t, uint64(0), streamMsgs(t, srv, "DLQ"))
}

func mustConsumerPendingMsgs(t *testing.T, srv *eventstest.Server) uint64 {
	t.Helper()
	c, err := srv.JS.Consumer(testCtx(t), "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)
	return c.CachedInfo().NumPending
}

// waitConsumerPending waits until the seed durable has want messages pending
// (the server updates the count after the publish ack).
func waitConsumerPending(t *testing.T, srv *eventstest.Server, want uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return mustConsumerPendingMsgs(t, srv) == want }, 10*time.Second, 10*time.Millisecond,
		"consumer pending %d, want %d", mustConsumerPendingMsgs(t, srv), want)
}

func TestDLQReplay_keep_then_again_is_stored_once(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	dseq := sendDeadLetter(t, srv, 1, middleware.ReasonMaxDeliver, errors.New("boom"), nil)

	out := mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1", "-keep")
	assert.Contains(t, out, "kept in DLQ")
	_, err := getMsg(t, srv, "DLQ", dseq)
	require.NoError(t, err, "-keep keeps the dead letter")
	require.Equal(t, uint64(2), streamMsgs(t, srv, "AUTH_EVENTS"))

	// A second replay of the same dead letter (as after a replay whose
	// delete failed) carries the same replay id: the stream stores it once.
	out = mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1")
	assert.Contains(t, out, "already replayed earlier (duplicate)")
	assert.Contains(t, out, "deleted from DLQ")
	assert.Equal(t, uint64(2), streamMsgs(t, srv, "AUTH_EVENTS"))
	assert.Equal(t, uint64(0), streamMsgs(t, srv, "DLQ"))
}

func TestDLQReplay_original_msg_id_inside_duplicates_window_is_refused(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	dseq := sendDeadLetter(t, srv, 1, middleware.ReasonPermanent, errors.New("boom"), nil)

	_, _, err := runCmd(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1", "-original-msg-id")
	require.ErrorIs(t, err, errDeduplicated)
	assert.Contains(t, err.Error(), e.ID)
	assert.Contains(t, err.Error(), "2m0s")
	assert.Equal(t, uint64(1), streamMsgs(t, srv, "AUTH_EVENTS"), "nothing stored")
	_, err = getMsg(t, srv, "DLQ", dseq)
	require.NoError(t, err, "the dead letter is kept")
}

func TestDLQReplay_original_msg_id_outside_window_keeps_the_event_id(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	e := publishEvent(t, srv, "auth.user.created", "user.created")
	sendDeadLetter(t, srv, 1, middleware.ReasonPermanent, errors.New("boom"), nil)
	// The stream forgets the original's id the deterministic way (no
	// waiting for the window): it is recreated, empty.
	require.NoError(t, srv.JS.DeleteStream(ctx, "AUTH_EVENTS"))
	specs, err := jetstream.LoadSpecs(specFile)
	require.NoError(t, err)
	_, err = jetstream.Apply(ctx, srv.JS, specs.All()...)
	require.NoError(t, err)

	mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", "1", "-original-msg-id")
	replayed, err := getMsg(t, srv, "AUTH_EVENTS", 1)
	require.NoError(t, err)
	assert.Equal(t, e.ID, replayed.Header.Get(nats.MsgIdHdr))
}

func TestDLQReplay_all_replays_every_matching_dead_letter(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	publishEvent(t, srv, "auth.user.deleted", "user.deleted")
	publishEvent(t, srv, "auth.user.created", "user.created")
	for seq := uint64(1); seq <= 3; seq++ {
		sendDeadLetter(t, srv, seq, middleware.ReasonMaxDeliver, errors.New("boom"), nil)
	}

	out := mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-all", "-subject", "dlq.auth.user.created")
	assert.Equal(t, "replayed 2 of 2 dead letters from DLQ on dlq.auth.user.created; deleted from DLQ\n", out)
	assert.Equal(t, uint64(5), streamMsgs(t, srv, "AUTH_EVENTS"))
	dls := dlqLines(t, mustRun(t, ctx, "dlq", "list", "-server", srv.URL, "-json"))
	require.Len(t, dls, 1)
	assert.Equal(t, "auth.user.deleted", dls[0].OriginalSubject)

	out = mustRun(t, ctx, "dlq", "replay", "-server", srv.URL, "-all", "-v")
	assert.Contains(t, out, "replayed DLQ seq 2 -> auth.user.deleted (stream AUTH_EVENTS seq 6")
	assert.Contains(t, out, "replayed 1 of 1 dead letter from DLQ; deleted from DLQ")
	assert.Equal(t, uint64(6), streamMsgs(t, srv, "AUTH_EVENTS"))
	assert.Equal(t, uint64(0), streamMsgs(t, srv, "DLQ"))
}

func TestDLQReplay_failures(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	// A message on the DLQ stream that no middleware wrote.
	_, err := srv.JS.Publish(ctx, "dlq.manual", []byte("x"))
	require.NoError(t, err)
	// A dead letter whose original stream is gone.
	publishEvent(t, srv, "auth.user.created", "user.created")
	gone := sendDeadLetter(t, srv, 1, middleware.ReasonPermanent, errors.New("boom"), nil)
	require.NoError(t, srv.JS.DeleteStream(ctx, "AUTH_EVENTS"))

	tests := []struct {
		name string
		seq  uint64
		want error
		text string
	}{
		{"not a dead letter", 1, errNotDeadLetter,
			"dlq replay: not a dead letter: DLQ seq 1 (dlq.manual) has no Dlq-Original-Subject header: look at it with 'jetevents dlq show 1'; purge it if it does not belong in DLQ"},
		{"no such sequence", 99, natsjs.ErrMsgNotFound,
			"dlq replay: DLQ has no dead letter with sequence 99 (it holds 2 dead letters, sequences 1 to 2; replayed and purged ones are gone): list them with 'jetevents dlq list'"},
		{"original stream gone", gone, natsjs.ErrNoStreamResponse,
			"dlq replay: replay of DLQ seq 2 to auth.user.created failed: no stream stores that subject any more (the dead letter is kept): create the stream again ('jetevents streams apply -f FILE')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, "dlq", "replay", "-server", srv.URL, "-seq", itoa(tt.seq))
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, tt.text, err.Error())
		})
	}
	assert.Equal(t, uint64(2), streamMsgs(t, srv, "DLQ"), "failed replays keep the dead letters")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestDLQPurge_refuses_without_yes_then_purges(t *testing.T) {
	srv := newServer(t)
	ctx := testCtx(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	publishEvent(t, srv, "auth.user.deleted", "user.deleted")
	publishEvent(t, srv, "auth.user.created", "user.created")
	for seq := uint64(1); seq <= 3; seq++ {
		sendDeadLetter(t, srv, seq, middleware.ReasonMaxDeliver, errors.New("boom"), nil)
	}

	out, _, err := runCmd(t, ctx, "dlq", "purge", "-server", srv.URL)
	require.ErrorIs(t, err, errRefused)
	assert.Contains(t, out, "would purge 3 dead letters from DLQ")
	assert.Contains(t, err.Error(), "nothing purged: rerun with -yes to purge the 3 dead letters listed")
	assert.Regexp(t, `dlq\.auth\.user\.created\s+2`, out)
	assert.Regexp(t, `dlq\.auth\.user\.deleted\s+1`, out)
	assert.Equal(t, uint64(3), streamMsgs(t, srv, "DLQ"), "nothing purged without -yes")

	out = mustRun(t, ctx, "dlq", "purge", "-server", srv.URL, "-subject", "dlq.auth.user.deleted", "-yes")
	assert.Contains(t, out, "purged 1 dead letter from DLQ")
	assert.Equal(t, uint64(2), streamMsgs(t, srv, "DLQ"))

	out = mustRun(t, ctx, "dlq", "purge", "-server", srv.URL, "-yes")
	assert.Contains(t, out, "purged 2 dead letters from DLQ")
	assert.Equal(t, uint64(0), streamMsgs(t, srv, "DLQ"))

	out = mustRun(t, ctx, "dlq", "purge", "-server", srv.URL)
	assert.Contains(t, out, "nothing to purge")
}

// TestSetupScript_creates_streams_idempotently runs the shipped script with
// bash, the test binary standing in for jetevents (JETEVENTS_BIN).
func TestSetupScript_creates_streams_idempotently(t *testing.T) {
	srv := eventstest.NewServer(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	script, err := filepath.Abs("../../scripts/setup-nats-streams.sh")
	require.NoError(t, err)

	runScript := func() string {
		t.Helper()
		cmd := exec.CommandContext(testCtx(t), "bash", script)
		cmd.Dir = t.TempDir() // the script must not depend on the caller's directory
		cmd.Env = append(os.Environ(), "NATS_URL="+srv.URL, "JETEVENTS_BIN="+exe, runAsMainEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	out := runScript()
	assert.Contains(t, out, "stream AUTH_EVENTS: created")
	assert.Contains(t, out, "stream DLQ: created")
	assert.Contains(t, out, "consumer AUTH_EVENTS/user-notifications: created")

	out = runScript()
	assert.Contains(t, out, "3 specs: 0 created, 0 updated, 3 unchanged")

	ctx := testCtx(t)
	for _, name := range []string{"AUTH_EVENTS", "DLQ"} {
		_, err := srv.JS.Stream(ctx, name)
		require.NoError(t, err, name)
	}
	_, err = srv.JS.Consumer(ctx, "AUTH_EVENTS", "user-notifications")
	require.NoError(t, err)

	t.Run("connection flags after the specs file reach the command", func(t *testing.T) {
		secure := newSecuredServer(t)
		cmd := exec.CommandContext(testCtx(t), "bash", append([]string{script, "../../scripts/streams.yaml"}, secure.adminFlags()...)...)
		cmd.Dir, err = filepath.Abs(".")
		require.NoError(t, err)
		cmd.Env = append(os.Environ(), "JETEVENTS_BIN="+exe, runAsMainEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "3 specs: 3 created, 0 updated, 0 unchanged")
	})
}

// TestMain_exit_codes runs the command as a process: 0 on success, 2 for a
// command line it does not understand, 1 for a failure, with the error on
// stderr.
func TestMain_exit_codes(t *testing.T) {
	srv := newServer(t)
	publishEvent(t, srv, "auth.user.created", "user.created")
	sendDeadLetter(t, srv, 1, middleware.ReasonPermanent, errors.New("boom"), nil)
	exe, err := os.Executable()
	require.NoError(t, err)
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"success", []string{"streams", "list", "-server", srv.URL}, 0, ""},
		{"help", []string{"dlq", "list", "-h"}, 0, "-subject"},
		{"usage", []string{"streams", "apply"}, 2, "jetevents: streams apply: -f FILE is required (e.g. -f scripts/streams.yaml): see 'jetevents streams apply -h'\n"},
		{"refused", []string{"dlq", "purge", "-server", srv.URL}, 1, "jetevents: dlq purge: nothing purged: rerun with -yes to purge the 1 dead letter listed\n"},
		{"failure", []string{"streams", "apply", "-server", srv.URL, "-f", "/nonexistent.yaml"}, 1, "jetevents: streams apply: cannot read spec file: open /nonexistent.yaml: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(testCtx(t), exe, tt.args...)
			cmd.Env = append(os.Environ(), runAsMainEnv+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			assert.Contains(t, stderr.String(), tt.inStderr)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
