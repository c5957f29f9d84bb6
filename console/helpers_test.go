package console_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ensureStreams creates AUTH_EVENTS (auth.>, schedules allowed) and DLQ.
func ensureStreams(t testing.TB, js natsjs.JetStream) {
	t.Helper()
	auth := jetstream.AuthEventsStream()
	auth.AllowMsgSchedules = true
	_, err := jetstream.Ensure(testCtx(t), js, watermill.NopLogger{}, auth, jetstream.DeadLetterStream())
	require.NoError(t, err)
}

// app is a service under test: a real router with the group
// user-notifications on auth.user.>, whose handler fails permanently for
// the event ids in failing (until fixed), and counts what it handled.
type app struct {
	t       testing.TB
	srv     *eventstest.Server
	pub     *jetstream.Publisher
	r       *router.Router
	mu      sync.Mutex
	failing map[string]error
	handled map[string]int
	gate    chan struct{} // when not nil, each handler waits for a token
	cancel  context.CancelFunc
	done    chan error
}

func newApp(t testing.TB, srv *eventstest.Server) *app {
	t.Helper()
	ensureStreams(t, srv.JS)
	pub, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	a := &app{t: t, srv: srv, pub: pub, failing: map[string]error{}, handled: map[string]int{}}
	return a
}

// start runs the router until the test ends (or stop).
func (a *app) start() { a.startWith(func(*router.Config) {}) }

// startSmall runs a router that holds 2 events at a time, so that the
// durable's pending count falls as events are handled.
func (a *app) startSmall() { a.startWith(func(c *router.Config) { c.FetchBatch = 2 }) }

func (a *app) startWith(mod func(*router.Config)) {
	a.t.Helper()
	cfg := router.Config{Stream: "AUTH_EVENTS", MaxDeliver: 2,
		Backoff: transport.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}, Heartbeat: time.Second,
		Logger: watermill.NopLogger{}}
	mod(&cfg)
	r, err := router.New(a.srv.Conn, cfg)
	require.NoError(a.t, err)
	handle := func(ctx context.Context, e *envelope.Event) error {
		if a.gate != nil {
			select {
			case <-a.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if err := a.failing[e.ID]; err != nil {
			return middleware.Permanent(err)
		}
		a.handled[e.ID]++
		return nil
	}
	r.Group("user-notifications", "auth.user.>").On("user.created", handle).On("user.deleted", handle)
	ctx, cancel := context.WithCancel(context.Background())
	a.r, a.cancel, a.done = r, cancel, make(chan error, 1)
	go func() { a.done <- r.Run(ctx) }()
	a.t.Cleanup(a.stop)
	select {
	case <-r.Running():
	case err := <-a.done:
		a.t.Fatalf("router: %v", err)
	}
}

func (a *app) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel = nil
}

// publish publishes an event of type typ for org; failWith makes its
// handler fail permanently.
func (a *app) publish(typ, org string, failWith error) *envelope.Event {
	a.t.Helper()
	e := envelope.NewEvent(typ, "auth-service", org, time.Now(), map[string]any{"user_id": 7})
	if failWith != nil {
		a.mu.Lock()
		a.failing[e.ID] = failWith
		a.mu.Unlock()
	}
	require.NoError(a.t, a.pub.Publish(testCtx(a.t), "auth."+typ, e))
	return e
}

// fix makes every failing event succeed from now on.
func (a *app) fix() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing = map[string]error{}
}

func (a *app) handledCount(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.handled[id]
}

func dlqCount(t testing.TB, js natsjs.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(testCtx(t), "DLQ")
	require.NoError(t, err)
	info, err := st.Info(testCtx(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer is a slog handler's output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// web is a console served by httptest, and a client with a cookie jar.
type web struct {
	t      testing.TB
	h      *console.Handler
	srv    *httptest.Server
	client *http.Client
	base   string // srv.URL + Config.Path
}

func newWeb(t testing.TB, cfg console.Config) *web {
	t.Helper()
	h, err := console.New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	path := cfg.Path
	if path == "" {
		path = "/"
	}
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &web{t: t, h: h, srv: srv, client: client, base: srv.URL + path}
}

// get fetches a console page and returns its status and body.
func (w *web) get(path string) (int, string) {
	w.t.Helper()
	resp, err := w.client.Get(w.base + path)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return resp.StatusCode, string(b)
}

// post submits a form to a console path; the Location of a redirect is
// returned with the body.
func (w *web) post(path string, form url.Values) (int, string, string) {
	w.t.Helper()
	resp, err := w.client.PostForm(w.base+path, form)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token reads the CSRF token of a page (loading it sets the cookie).
func (w *web) token(path string) string {
	w.t.Helper()
	status, body := w.get(path)
	require.Equal(w.t, http.StatusOK, status, body)
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(w.t, m, "no CSRF token on %s", path)
	return m[1]
}

var errDeclined = errors.New("card declined")

func newEvent(typ, org string) *envelope.Event {
	return envelope.NewEvent(typ, "auth-service", org, time.Now(), map[string]any{"user_id": 7})
}

func consumerInfo(t testing.TB, srv *eventstest.Server, name string) *natsjs.ConsumerInfo {
	t.Helper()
	c, err := srv.JS.Consumer(testCtx(t), "AUTH_EVENTS", name)
	require.NoError(t, err)
	ci, err := c.Info(testCtx(t))
	require.NoError(t, err)
	return ci
}

type authMode int

const (
	authUser authMode = iota
	authToken
)

// authServer starts a JetStream server that requires a user and password
// (alice) or a token, and connects with the secret in the URL, the way an
// operator's NATS_URL often carries it.
func authServer(t testing.TB, mode authMode, password, token string) *nats.Conn {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	switch mode {
	case authUser:
		opts.Username, opts.Password = "alice", password
	case authToken:
		opts.Authorization = token
	}
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(30*time.Second))
	u, err := url.Parse(s.ClientURL())
	require.NoError(t, err)
	switch mode {
	case authUser:
		u.User = url.UserPassword("alice", password)
	case authToken:
		u.User = url.User(token)
	}
	nc, err := nats.Connect(u.String())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func jsOf(t testing.TB, nc *nats.Conn) natsjs.JetStream {
	t.Helper()
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	return js
}

// sendDeadLetter stores msg in AUTH_EVENTS and dead-letters it as the
// router does.
func sendDeadLetter(t testing.TB, nc *nats.Conn, js natsjs.JetStream, msg *nats.Msg) {
	t.Helper()
	ack, err := js.PublishMsg(testCtx(t), msg)
	require.NoError(t, err)
	st, err := js.Stream(testCtx(t), "AUTH_EVENTS")
	require.NoError(t, err)
	raw, err := st.GetMsg(testCtx(t), ack.Sequence)
	require.NoError(t, err)
	tr, err := jetstream.NewTransport(nc, jetstream.TransportConfig{DeadLetterStream: "DLQ"})
	require.NoError(t, err)
	dl, err := middleware.NewDeadLetterer(tr, middleware.DeadLetterConfig{Stream: "DLQ"})
	require.NoError(t, err)
	require.NoError(t, dl.Send(testCtx(t), middleware.Record{Subject: raw.Subject, Header: raw.Header, Data: raw.Data,
		Stream: "AUTH_EVENTS", Consumer: "user-notifications", StreamSeq: ack.Sequence, Deliveries: 1,
		Handler: "user-notifications", Reason: middleware.ReasonPermanent, Err: errDeclined}))
}
