package console_test

// Browser tests: the console in headless Chromium (Debian's chromium,
// installed by `make chromium`), driven from Go with chromedp, against an
// embedded NATS server with real traffic through a real router. One
// Chromium serves the whole package (started by the first test that needs
// it, stopped by TestMain); each test gets a tab in a browser context of
// its own (its own cookies). Screenshots of each page are written to the
// test's artifact directory (go test -artifacts keeps them, under
// -outputdir) and their paths logged; -update-docs also writes the README's
// screenshot, docs/console-deadletters.png.

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/eventstest"
)

var updateDocs = flag.Bool("update-docs", false, "write the README's console screenshot to ../docs/")

func TestMain(m *testing.M) {
	eventstest.RunServerIfChild() // the benchmark's nats-server process never returns from here
	flag.Parse()
	code := m.Run()
	chrome.stop()
	os.Exit(code)
}

// chromium is the package's one Chromium.
type chromium struct {
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	dataDir string
	err     error
}

var chrome chromium

func (c *chromium) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.dataDir != "" {
		os.RemoveAll(c.dataDir)
	}
}

// chromiumPath finds the browser: $CHROMIUM, else chromium (Debian),
// chromium-browser, google-chrome on $PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium on this machine: run `make chromium` (installs Debian's chromium), or set $CHROMIUM to a Chrome or Chromium binary")
}

// browser starts the package's Chromium once: headless, no sandbox (tests
// run as root in CI), no GPU, and none of its background connections (the
// machine's network refuses them), with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	chrome.once.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			chrome.err = err
			return
		}
		dir, err := os.MkdirTemp("", "jetevents-chromium-")
		if err != nil {
			chrome.err = err
			return
		}
		chrome.dataDir = dir
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(dir),
			chromedp.WindowSize(1440, 900),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-sync", true),
		)
		actx, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		chrome.ctx, chrome.cancel = chromedp.NewContext(actx)
		chrome.err = chromedp.Do(chrome.ctx) // starts the browser
	})
	require.NoError(t, chrome.err, "starting Chromium")
	return chrome.ctx
}

// tab is a new tab in a browser context of its own, closed when the test
// ends.
func tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	require.NoError(t, err, "text of %s", css)
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

func present(t *testing.T, ctx context.Context, css string) bool {
	t.Helper()
	return eval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null`, css))
}

// click clicks an element that submits a form or follows a link, and
// returns the status of the page it leads to.
func click(t *testing.T, ctx context.Context, css string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	require.NoError(t, err, "click %s", css)
	return resp.Status
}

func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	require.NoError(t, err, "open %s", url)
	require.EqualValues(t, http.StatusOK, resp.Status, "open %s", url)
}

// screenshot saves the page as name.png in the test's artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.ArtifactDir(), name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
	return png
}

// TestBrowser_overview_shows_the_pending_count_falling: 30 events wait for
// a group whose router is stopped; the overview shows 30 pending; the
// router starts and handles them as the test lets it, and the page's live
// number falls to 0 without a reload. Then the group page pauses and
// resumes the group.
func TestBrowser_overview_shows_the_pending_count_falling(t *testing.T) {
	srv := eventstest.NewServer(t)
	a := newApp(t, srv)
	a.start() // creates the durable
	a.stop()
	for range 30 {
		a.publish("user.created", "org-1", nil)
	}
	w := newWeb(t, console.Config{JetStream: srv.JS, Refresh: 500 * time.Millisecond, AllowWrites: true,
		Identity: func(*http.Request) string { return "oncall" }})
	ctx := tab(t)
	open(t, ctx, w.base)
	const pending = `[data-live="group/AUTH_EVENTS/user-notifications/pending"]`
	require.Equal(t, "30", text(t, ctx, pending))
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))
	screenshot(t, ctx, "overview-30-pending")

	a.gate = make(chan struct{})
	a.startSmall()
	for range 10 {
		a.gate <- struct{}{}
	}
	seen := waitText(t, ctx, pending, func(s string) bool { return s != "30" && s != "0" && s != "" })
	t.Logf("pending on the page after 10 handled: %s", seen)
	close(a.gate)
	waitText(t, ctx, pending, func(s string) bool { return s == "0" })
	assert.True(t, eval[bool](t, ctx, `window.__notReloaded === true`), "the numbers changed without a reload")
	assert.Equal(t, "0", text(t, ctx, `[data-live="group/AUTH_EVENTS/user-notifications/ackpending"]`))
	screenshot(t, ctx, "overview")

	// The group page: pause, then resume.
	require.EqualValues(t, http.StatusOK, click(t, ctx, `a[href="/groups/AUTH_EVENTS/user-notifications"]`))
	require.EqualValues(t, http.StatusOK, click(t, ctx, "#pause"))
	assert.Contains(t, text(t, ctx, ".flash"), "Paused AUTH_EVENTS/user-notifications until")
	assert.Equal(t, "paused", text(t, ctx, "h1 .state"))
	screenshot(t, ctx, "group-paused")
	require.EqualValues(t, http.StatusOK, click(t, ctx, "#resume"))
	assert.Contains(t, text(t, ctx, ".flash"), "Resumed AUTH_EVENTS/user-notifications")
	assert.False(t, consumerInfo(t, srv, "user-notifications").Paused)
}

// waitText polls an element's text until ok, and returns it.
func waitText(t *testing.T, ctx context.Context, css string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := text(t, ctx, css)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still shows %q", css, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowser_dead_letters_replay_and_purge: three events fail
// permanently; the page lists the three dead letters with their reasons
// and errors; after the fix, the Replay button of one row replays it, its
// handler succeeds and the row is gone; purge asks for a confirmation
// first and removes the rest only once confirmed.
func TestBrowser_dead_letters_replay_and_purge(t *testing.T) {
	a, ids := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "oncall" }})
	ctx := tab(t)
	open(t, ctx, w.base+"deadletters")
	rows := eval[int](t, ctx, `document.querySelectorAll("table.deadletters tbody tr[data-seq]").length`)
	require.Equal(t, 3, rows)
	for seq, want := range map[int][2]string{1: {"permanent", "card declined"}, 2: {"permanent", "user service down"}, 3: {"permanent", "card declined"}} {
		row := fmt.Sprintf(`tr[data-seq="%d"]`, seq)
		assert.Equal(t, want[0], text(t, ctx, row+" .reason"))
		assert.Equal(t, want[1], text(t, ctx, row+" td.err"))
	}
	png := screenshot(t, ctx, "deadletters")
	if *updateDocs {
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "console-deadletters.png"), png, 0o644))
	}
	require.EqualValues(t, http.StatusOK, click(t, ctx, `tr[data-seq="2"] a`))
	assert.Contains(t, text(t, ctx, ".big-error"), "user service down")
	assert.Contains(t, text(t, ctx, "pre.json"), ids[1])
	screenshot(t, ctx, "deadletter")
	do(t, ctx, chromedp.NavigateBack())

	a.fix()
	require.EqualValues(t, http.StatusOK, click(t, ctx, `tr[data-seq="1"] button[name=one]`))
	assert.Contains(t, text(t, ctx, ".flash"), "Replayed 1 dead letter now: DLQ seq 1 -> auth.user.created")
	assert.False(t, present(t, ctx, `tr[data-seq="1"]`), "the replayed dead letter is gone from the page")
	assert.True(t, present(t, ctx, `tr[data-seq="2"]`))
	waitFor(t, "the replayed event's handler to succeed", func() bool { return a.handledCount(ids[0]) == 1 })

	require.EqualValues(t, http.StatusOK, click(t, ctx, "#purge"))
	assert.Equal(t, "Purge every dead letter?", text(t, ctx, ".confirm .question"))
	assert.EqualValues(t, 2, dlqCount(t, a.srv.JS), "nothing purged before the confirmation")
	screenshot(t, ctx, "purge-confirmation")
	require.EqualValues(t, http.StatusOK, click(t, ctx, "#confirm"))
	assert.Equal(t, "Purged 2 dead letters from DLQ", text(t, ctx, ".flash"))
	assert.Zero(t, dlqCount(t, a.srv.JS))
	assert.Zero(t, eval[int](t, ctx, `document.querySelectorAll("tr[data-seq]").length`))
}

// TestBrowser_read_only_console_shows_no_write_and_refuses_one: without
// AllowWrites no page has a write button, and a write sent from the page
// anyway is refused with 403.
func TestBrowser_read_only_console_shows_no_write_and_refuses_one(t *testing.T) {
	a, _ := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS})
	ctx := tab(t)
	for _, page := range []string{"", "deadletters", "deadletters/1", "groups/AUTH_EVENTS/user-notifications", "schedules"} {
		open(t, ctx, w.base+page)
		assert.Zero(t, eval[int](t, ctx, `document.querySelectorAll("form[method=post], button[name=one], #purge, #pause, #resume, #replay").length`), "page %q", page)
		assert.Equal(t, "read-only", text(t, ctx, "header .mode"))
	}
	open(t, ctx, w.base+"schedules")
	screenshot(t, ctx, "schedules")
	for _, path := range []string{"deadletters/replay", "deadletters/purge", "groups/AUTH_EVENTS/user-notifications/pause", "schedules/cancel"} {
		status := eval[int](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams({one: "1", confirm: "yes", all: "1"})}).then(r => r.status)`, w.base+path))
		assert.Equal(t, http.StatusForbidden, status, path)
	}
	assert.EqualValues(t, 3, dlqCount(t, a.srv.JS))
}

// TestBrowser_a_write_without_the_CSRF_token_is_refused: the page's form
// with its token field removed is refused (403) and changes nothing; a
// fetch without the token too.
func TestBrowser_a_write_without_the_CSRF_token_is_refused(t *testing.T) {
	a, _ := withDeadLetters(t)
	w := newWeb(t, console.Config{JetStream: a.srv.JS, AllowWrites: true, Identity: func(*http.Request) string { return "oncall" }})
	ctx := tab(t)
	open(t, ctx, w.base+"deadletters")
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#dlq-form input[name=csrf]').remove()`))
	status := click(t, ctx, `tr[data-seq="1"] button[name=one]`)
	assert.EqualValues(t, http.StatusForbidden, status)
	assert.Contains(t, text(t, ctx, "p.error"), "missing or invalid CSRF token")
	screenshot(t, ctx, "csrf-refused")
	fetched := eval[int](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams({confirm: "yes"})}).then(r => r.status)`, w.base+"deadletters/purge"))
	assert.Equal(t, http.StatusForbidden, fetched)
	assert.EqualValues(t, 3, dlqCount(t, a.srv.JS))
}
