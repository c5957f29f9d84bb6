//go:build reliability

package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// Soak bounds.
const (
	// soakWarmup is the share of the events published before the RSS
	// baseline is taken.
	soakWarmup = 0.2
	// soakRSSGrowth bounds the RSS after warm-up: at most +50 % of the
	// baseline.
	soakRSSGrowth = 1.5
	// soakGoroutineSpread bounds the goroutines while events flow, after
	// warm-up: max - min. The pipeline has no goroutine per message, so
	// only nats.go's and the runtime's few come and go.
	soakGoroutineSpread = 10
	// soakLeakWait bounds the wait for every goroutine of the publisher,
	// the router and their connections to end after Close.
	soakLeakWait = 10 * time.Second
)

// TestSoak_steady_rate_memory_and_goroutines_flat: 1M events (full size;
// RELIABILITY_SOAK_EVENTS) published at a steady rate (async) and handled by
// a router, the server in its own process so that the test process holds
// only the publisher and the router. RSS, Go heap and goroutines are
// sampled and printed. Asserted: every event acked and handled, nothing
// lost, RSS after warm-up within +50 % of its baseline, goroutines flat
// while events flow, and after Run returned and the publisher and the
// connections closed, no goroutine left: the count is back to what it was
// before they were created and no goroutine of nats.go or jetevents
// remains.
func TestSoak_steady_rate_memory_and_goroutines_flat(t *testing.T) {
	n := sizeFrom(t, "RELIABILITY_SOAK_EVENTS", 1000000, 60000)
	rate, every := 10000, 5*time.Second // events a second; sampling period
	if testing.Short() {
		rate, every = 5000, 500*time.Millisecond
	}
	const name = "soak: steady rate, RSS and goroutines"
	const prefix = "s-"

	c := eventstest.NewClusterWithConfig(t, eventstest.ClusterConfig{Nodes: 1})
	runtime.GC()
	goroutinesBefore := runtime.NumGoroutine() // before any connection
	admin := connectTo(t, c.URL(0), "reliability-admin")
	applyStreams(t, admin, 1)
	js, err := natsjs.New(admin)
	require.NoError(t, err)

	// Fixed-size bookkeeping, allocated before the baseline: what grows
	// after it is the pipeline's.
	acked := make([]atomic.Bool, n)
	handled := make([]atomic.Uint32, n)
	var ackedN, handledN, dups, failures atomic.Int64
	var retryMu sync.Mutex
	var retry []int
	indexOf := func(id string) int {
		i, err := strconv.Atoi(strings.TrimPrefix(id, prefix))
		if err != nil || i < 0 || i >= n {
			return -1
		}
		return i
	}
	var lastFirst, longest atomic.Int64 // UnixNano; ns
	progress := func() {
		now := time.Now().UnixNano()
		gap := now - lastFirst.Swap(now)
		for {
			old := longest.Load()
			if gap <= old || longest.CompareAndSwap(old, gap) {
				return
			}
		}
	}

	pubConn := connectTo(t, c.URL(0), "reliability-publisher")
	pub, err := jetstream.NewPublisher(pubConn,
		jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{func(ctx context.Context, info jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
			i := indexOf(info.EventID)
			return ctx, func(r jetstream.PublishResult) {
				if i < 0 {
					return
				}
				if r.Err != nil {
					failures.Add(1)
					if !acked[i].Load() {
						retryMu.Lock()
						retry = append(retry, i)
						retryMu.Unlock()
					}
					return
				}
				if acked[i].CompareAndSwap(false, true) {
					ackedN.Add(1)
				}
			}
		}}, OnAsyncError: func(jetstream.AsyncError) {}, Logger: watermill.NopLogger{}, MaxPending: 1024})
	require.NoError(t, err)

	subConn := connectTo(t, c.URL(0), "reliability-router")
	rt, err := router.New(subConn, router.Config{Stream: relStream, Logger: routerLogger()})
	require.NoError(t, err)
	rt.Group("soak", "rel.>").On(relSubject, func(_ context.Context, e *envelope.Event) error {
		i := indexOf(e.ID)
		if i < 0 {
			return fmt.Errorf("event id %q", e.ID)
		}
		if handled[i].Add(1) == 1 {
			handledN.Add(1)
			progress()
		} else {
			dups.Add(1)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
	case err := <-runErr:
		t.Fatalf("router: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("router not running after a minute")
	}

	// The sampler.
	type sample struct {
		at                  time.Duration
		published, handled  int64
		rss, heap           uint64
		goroutines          int
		afterWarmup, during bool
	}
	var published atomic.Int64
	var samplesMu sync.Mutex
	var samples []sample
	start := time.Now()
	lastFirst.Store(start.UnixNano())
	sampleNow := func() sample {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, err := readRSS()
		if err != nil {
			t.Errorf("RSS: %v", err)
		}
		p := published.Load()
		return sample{at: time.Since(start), published: p, handled: handledN.Load(), rss: rss, heap: ms.HeapInuse,
			goroutines: runtime.NumGoroutine(), afterWarmup: p >= int64(soakWarmup*float64(n)), during: p < int64(n)}
	}
	samplerStop := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-samplerStop:
				return
			case <-tick.C:
				s := sampleNow()
				samplesMu.Lock()
				samples = append(samples, s)
				samplesMu.Unlock()
			}
		}
	}()

	// The publisher: a steady rate (what is due by now, every 10ms), and
	// every failure published again.
	pctx, pcancel := context.WithTimeout(ctx, time.Duration(n/rate)*time.Second+scenarioWait)
	defer pcancel()
	tick := time.NewTicker(10 * time.Millisecond)
	now := time.Now().UTC()
	for i := 0; i < n; {
		<-tick.C
		due := min(n, int(time.Since(start).Seconds()*float64(rate)))
		for ; i < due; i++ {
			e := envelope.NewEvent(relSubject, "reliability", "org-1", now, map[string]interface{}{"n": i})
			e.ID = prefix + strconv.Itoa(i)
			_ = pub.PublishAsync(pctx, relSubject, e)
			published.Store(int64(i + 1))
		}
		retryMu.Lock()
		again := retry
		retry = nil
		retryMu.Unlock()
		for _, j := range again {
			e := envelope.NewEvent(relSubject, "reliability", "org-1", now, map[string]interface{}{"n": j})
			e.ID = prefix + strconv.Itoa(j)
			_ = pub.PublishAsync(pctx, relSubject, e)
		}
	}
	tick.Stop()
	publishedIn := time.Since(start)

	done := waitUntil(scenarioWait, func() bool {
		if retryMu.TryLock() {
			for _, j := range retry {
				e := envelope.NewEvent(relSubject, "reliability", "org-1", now, map[string]interface{}{"n": j})
				e.ID = prefix + strconv.Itoa(j)
				_ = pub.PublishAsync(pctx, relSubject, e)
			}
			retry = nil
			retryMu.Unlock()
		}
		return ackedN.Load() == int64(n) && handledN.Load() == int64(n)
	})
	took := time.Since(start)
	assert.True(t, done, "not every event acked and handled within %s of the last publish: acked %d, handled %d of %d",
		scenarioWait, ackedN.Load(), handledN.Load(), n)
	close(samplerStop)
	<-samplerDone
	final := sampleNow()

	// Shut down in order: Run returns, the publisher closes, the
	// connections close; then nothing of theirs may be left running.
	cancel()
	select {
	case err := <-runErr:
		assert.NoError(t, err, "router Run")
	case <-time.After(time.Minute):
		t.Fatal("router Run did not return a minute after its context was cancelled")
	}
	require.NoError(t, closeWithin(pub, time.Minute))
	stored := streamMsgs(t, js, relStream)
	pubConn.Close()
	subConn.Close()
	admin.Close()
	var leftover int
	var leaked string
	clean := waitUntil(soakLeakWait, func() bool {
		leftover = runtime.NumGoroutine()
		leaked = leakedGoroutines()
		return leftover <= goroutinesBefore && leaked == ""
	})

	// The figures.
	samplesMu.Lock()
	defer samplesMu.Unlock()
	var lines []string
	var baseRSS, maxRSS uint64
	minG, maxG := int(^uint(0)>>1), 0
	for _, s := range samples {
		lines = append(lines, fmt.Sprintf("%7s  published %8d  handled %8d  rss %6.1f MB  heap %6.1f MB  goroutines %d",
			s.at.Round(100*time.Millisecond), s.published, s.handled, mb(s.rss), mb(s.heap), s.goroutines))
		if !s.afterWarmup {
			continue
		}
		if baseRSS == 0 {
			baseRSS = s.rss
		}
		maxRSS = max(maxRSS, s.rss)
		if s.during {
			minG, maxG = min(minG, s.goroutines), max(maxG, s.goroutines)
		}
	}
	t.Logf("%s: %d events at %d/s (published in %s), samples every %s:\n%s", name, n, rate,
		publishedIn.Round(100*time.Millisecond), every, strings.Join(lines, "\n"))

	r := row{Scenario: name, Events: n, Acked: int(ackedN.Load()), Duplicates: int(dups.Load()), Took: took,
		DeadLettered: rt.Stats().DeadLettered, LongestStall: time.Duration(longest.Load()), Asserted: true}
	for i := range acked {
		if acked[i].Load() && handled[i].Load() == 0 {
			r.Lost++
		}
	}
	r.Notes = fmt.Sprintf("%d/s; RSS %.1f MB after warm-up, max %.1f MB (+%.0f%%), final %.1f MB, heap %.1f MB; goroutines %d before, %d..%d while flowing, %d after close; %d failed publishes retried; stream holds %d",
		rate, mb(baseRSS), mb(maxRSS), 100*(float64(maxRSS)/float64(max(baseRSS, 1))-1), mb(final.rss), mb(final.heap),
		goroutinesBefore, minG, maxG, leftover, failures.Load(), stored)
	record(t, r)
	assert.Equal(t, n, r.Acked, "acked")
	assert.Zero(t, r.Lost, "lost")
	assert.Zero(t, r.DeadLettered, "dead-lettered")
	require.NotZero(t, baseRSS, "no sample after warm-up")
	assert.LessOrEqual(t, float64(maxRSS), soakRSSGrowth*float64(baseRSS), "RSS after warm-up: baseline %.1f MB, max %.1f MB", mb(baseRSS), mb(maxRSS))
	assert.LessOrEqual(t, maxG-minG, soakGoroutineSpread, "goroutines while events flow: %d..%d", minG, maxG)
	assert.True(t, clean, "goroutines %s after Run returned and the connections closed: %d (before: %d)\n%s",
		soakLeakWait, leftover, goroutinesBefore, leaked)
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// readRSS is the process's resident set size, from /proc/self/status.
func readRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// leakedGoroutines returns the stacks of goroutines running code of
// nats.go or of jetevents outside the test itself ("" when there are none):
// a goleak-style check, by hand.
func leakedGoroutines() string {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var leaked []string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*M)") {
			continue // the test's own goroutine, and main
		}
		if strings.Contains(g, "github.com/nats-io/nats.go") || strings.Contains(g, "github.com/jetevents/events/") &&
			!strings.Contains(g, "github.com/jetevents/events/eventstest") {
			leaked = append(leaked, g)
		}
	}
	return strings.Join(leaked, "\n\n")
}
