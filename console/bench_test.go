package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/console"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

// BenchmarkConsole_dead_letters_page_of_100k measures the dead-letters
// page on a dead-letter stream of 100,000 dead letters (CONSOLE_BENCH_DLQ
// sets another count) held by a nats-server process of its own
// (eventstest.NewCluster with one node), so that this process's resident
// set is the console's alone. Reported: the first page's server time
// (ServeHTTP, cold), the time of the page after it and of a search (a
// reason only 1 in 10,000 dead letters has: 10,000 examined per page), and
// the process's RSS growth from before the first page to after the last
// request. The loop serves pages from further in the stream. Targets
// (issue 20): first page < 300 ms, RSS growth < 50 MiB; measured, not
// asserted.
//
//	go test -run '^$' -bench Console_dead_letters -benchtime 20x ./console/
func BenchmarkConsole_dead_letters_page_of_100k(b *testing.B) {
	n := 100_000
	if s := os.Getenv("CONSOLE_BENCH_DLQ"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	c := eventstest.NewCluster(b, 1)
	nc := c.Connect(b)
	js := jsOf(b, nc)
	ensureStreams(b, js)
	start := time.Now()
	fillDeadLetters(b, nc, n)
	b.Logf("%d dead letters stored in %s", n, time.Since(start).Round(time.Millisecond))

	h, err := console.New(console.Config{JetStream: js})
	require.NoError(b, err)
	serve := func(path string) (time.Duration, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
		return d, rec.Body.String()
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := rss(b)
	first, body := serve("/deadletters")
	require.Contains(b, body, fmt.Sprintf("%s dead letters", numText(n)))
	require.Contains(b, body, `data-seq="50"`)
	next, _ := serve("/deadletters?from=51")
	search, body := serve("/deadletters?reason=unmarshal")
	require.Contains(b, body, "searched 10,000")

	b.ResetTimer()
	i := 0
	for b.Loop() {
		from := uint64(i*997%max(n-50, 1)) + 1
		serve("/deadletters?from=" + strconv.FormatUint(from, 10))
		i++
	}
	b.StopTimer()
	runtime.GC()
	rss1 := rss(b)
	growth := float64(int64(rss1)-int64(rss0)) / (1 << 20)
	b.ReportMetric(float64(first.Microseconds())/1000, "first-page-ms")
	b.ReportMetric(float64(search.Microseconds())/1000, "search-page-ms")
	b.ReportMetric(growth, "rss-growth-MiB")
	b.Logf("dead letters %d: first page %s, next page %s, search (10,000 examined) %s; RSS %.1f MiB before the first page, %.1f MiB after %d more pages: %+.1f MiB",
		n, first.Round(time.Microsecond), next.Round(time.Microsecond), search.Round(time.Microsecond),
		float64(rss0)/(1<<20), float64(rss1)/(1<<20), i, growth)
}

// fillDeadLetters stores n dead letters in DLQ: copies of one the
// DeadLetterer stored (every header it writes), each with its own
// sequence, organization and msg id; 1 in 10,000 has reason unmarshal.
func fillDeadLetters(b *testing.B, nc *nats.Conn, n int) {
	js := jsOf(b, nc)
	e := newEvent("user.created", "org-0")
	msg, err := marshaler.Default().EventToNATS("auth.user.created", e, marshaler.Relations{})
	require.NoError(b, err)
	sendDeadLetter(b, nc, js, msg)
	st, err := js.Stream(testCtx(b), "DLQ")
	require.NoError(b, err)
	tmpl, err := st.GetMsg(testCtx(b), 1)
	require.NoError(b, err)
	for i := 1; i < n; i++ {
		h := nats.Header{}
		for k, v := range tmpl.Header {
			h[k] = append([]string(nil), v...)
		}
		h.Set(nats.MsgIdHdr, "bench-"+strconv.Itoa(i))
		h.Set(middleware.HeaderStreamSeq, strconv.Itoa(i+1))
		h.Set(marshaler.HeaderOrganization, "org-"+strconv.Itoa(i%500))
		if i%10_000 == 0 {
			h.Set(middleware.HeaderReason, middleware.ReasonUnmarshal)
		}
		_, err := js.PublishMsgAsync(&nats.Msg{Subject: tmpl.Subject, Header: h, Data: tmpl.Data})
		require.NoError(b, err)
		if i%5_000 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("dead letters not acked in a minute")
	}
	info, err := st.Info(testCtx(b))
	require.NoError(b, err)
	require.EqualValues(b, n, info.State.Msgs)
}

// rss is this process's resident set size in bytes (/proc/self/statm).
func rss(b *testing.B) uint64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skipf("no /proc/self/statm here: %v", err)
	}
	f := strings.Fields(string(raw))
	pages, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(b, err)
	return pages * uint64(os.Getpagesize())
}

func numText(n int) string {
	s := strconv.Itoa(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
