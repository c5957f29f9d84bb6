package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
)

// The latency rows measure end-to-end latency under a fixed load: an
// open-loop publisher sends events at a fixed rate while a consumer handles
// them, and every event's latency is the time from its intended send time
// to the moment its handler starts (before the handler does anything else).
//
// Open loop, without coordinated omission: event i is due at start + i/rate
// whatever happened to the events before it, and its latency is counted
// from that due time, not from when it was actually sent. A publisher
// held back (its async window full, the machine busy) sends late, and the
// delay is in the event's latency, as it would be for a service whose
// clients do not slow down because it does. The due time travels as the
// event's own timestamp (the envelope's RFC 3339 nanosecond timestamp,
// what a producer sets), so every consumer reads it from the payload it
// decodes anyway. Latencies go into an HDR histogram
// (github.com/HdrHistogram/hdrhistogram-go, 1 µs to 10 min, 3 significant
// digits).
//
// Every row uses the same publisher (raw nats.go async publish on its own
// connection, the same wire format as the library's) and the same embedded
// server; only the consumer differs.

// LatencyRow is one consumer measured under open-loop load.
type LatencyRow string

// The latency rows, the raw consumer first.
const (
	// LatencyRaw is the hand-written consumer of the router rows
	// (ImplRawConsumeJSON): Consume (pull 500), encoding/json, Ack.
	LatencyRaw LatencyRow = LatencyRow(ImplRawConsumeJSON)
	// LatencyRouterDefault is router.New with its default config.
	LatencyRouterDefault LatencyRow = LatencyRow(ImplRouterDefault)
	// LatencyRouterConc8 is the default router with Concurrency 8 (the
	// handler does no work: it shows the cost of the handoff to 8 workers).
	LatencyRouterConc8 LatencyRow = "router-conc8"
	// LatencyRouterKV is the default router with a jetstream.KVStore as
	// Config.Idempotency (fresh bucket per trial).
	LatencyRouterKV LatencyRow = LatencyRow(ImplRouterKVIdempotency)
	// LatencyRouterKeyed is the router with keyed order: Concurrency 8 and
	// an OrderKey of 256 keys (KeyedOrderKey), so that events of one key
	// wait for each other and the others run beside them.
	LatencyRouterKeyed LatencyRow = "router-keyed-order"
	// LatencyWatermillRouter is watermill-nats' Subscriber in a Watermill
	// message.Router (ImplWatermillRouter).
	LatencyWatermillRouter LatencyRow = LatencyRow(ImplWatermillRouter)
)

// LatencyRows lists the rows measured, the raw consumer first.
func LatencyRows() []LatencyRow {
	return []LatencyRow{LatencyRaw, LatencyRouterDefault, LatencyRouterConc8, LatencyRouterKV, LatencyRouterKeyed, LatencyWatermillRouter}
}

// LatencyPending names the rows that have a slot in the report but are not
// measured yet, with the reason (none now: the keyed-order row waited here
// for GroupConfig.OrderKey).
var LatencyPending = map[LatencyRow]string{}

// KeyedOrderKey is the keyed-order row's order key: the event id's first
// two hex digits, 256 keys spread evenly (the bench's events share their
// organization, type and data, so no field of theirs tells them apart).
func KeyedOrderKey(e *envelope.Event) string { return e.ID[:min(2, len(e.ID))] }

// HDR histogram range of every latency histogram, in microseconds.
const (
	latencyMinMicros = 1
	latencyMaxMicros = int64(10 * time.Minute / time.Microsecond)
	latencySigFigs   = 3
)

// NewLatencyHistogram returns an empty histogram of latencies in
// microseconds, the range every latency row records into.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySigFigs)
}

// LatencyParams sizes one open-loop trial.
type LatencyParams struct {
	// Rate is the publisher's fixed rate in events per second. Required.
	Rate float64
	// Duration is how long the publisher sends. Default 10 s.
	Duration time.Duration
	// Warmup is the start of the run whose events are handled and checked
	// but not recorded. Default a fifth of Duration, at most 1 s; negative:
	// none (every event recorded).
	Warmup time.Duration
	// Size is the event data size in bytes. Default 512.
	Size int
	// Window is the publisher's maximum of pending async acks. Default 4096.
	Window int
	// Drain bounds the wait for the last events after the publisher is
	// done (an overloaded consumer works off its backlog). Default 2 min.
	Drain time.Duration
}

func (p *LatencyParams) setDefaults() {
	if p.Duration == 0 {
		p.Duration = 10 * time.Second
	}
	switch {
	case p.Warmup == 0:
		p.Warmup = min(p.Duration/5, time.Second)
	case p.Warmup < 0:
		p.Warmup = 0
	}
	if p.Size == 0 {
		p.Size = 512
	}
	if p.Window == 0 {
		p.Window = 4096
	}
	if p.Drain == 0 {
		p.Drain = 2 * time.Minute
	}
}

// LatencyResult is one open-loop trial of one row.
type LatencyResult struct {
	Row  LatencyRow
	Size int
	// Rate is the intended rate (events/s); Load is its fraction of the
	// raw consumer's measured maximum, when the caller knows it.
	Rate, Load float64
	// Sent is the number of events published (all of them, warm-up
	// included), Recorded the number in Latency (after the warm-up).
	Sent, Recorded int
	// Latency holds the due-time-to-handler latencies in µs.
	Latency *hdrhistogram.Histogram
	// SendLag holds how late the publisher actually sent each recorded
	// event after its due time (µs): the part of the latency spent before
	// the event left the process.
	SendLag *hdrhistogram.Histogram
	// Elapsed is from the first due time until the last event was handled.
	Elapsed time.Duration
	// Behind is from the last event's due time until the last event was
	// handled: near the latency of one event when the consumer kept up,
	// the backlog's drain time when it fell behind (the rate was beyond
	// what it sustains here, and its latencies grow with the run's length).
	Behind time.Duration
}

// Percentile returns the latency at percentile q (0..100).
func (r LatencyResult) Percentile(q float64) time.Duration {
	return time.Duration(r.Latency.ValueAtPercentile(q)) * time.Microsecond
}

// Max returns the highest latency recorded.
func (r LatencyResult) Max() time.Duration {
	return time.Duration(r.Latency.Max()) * time.Microsecond
}

// latencyRecorder is what a consumer calls at its handler's entry: the
// event's timestamp (its due time) and id. Safe for concurrent use.
type latencyRecorder struct {
	start   time.Time // first due time
	warmEnd time.Time // events due before are not recorded
	n       int

	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	ids      []string
	extra    int
	recorded int
	overflow int
	last     time.Time

	done     chan struct{}
	doneOnce sync.Once
}

func newLatencyRecorder(n int) *latencyRecorder {
	return &latencyRecorder{n: n, hist: NewLatencyHistogram(), ids: make([]string, 0, n), done: make(chan struct{})}
}

// seen records the handler's entry for the event due at due. The clock is
// read first, before the lock, so that waiting for the lock is not counted.
func (lr *latencyRecorder) seen(due time.Time, id string) {
	now := time.Now()
	lr.mu.Lock()
	if !due.Before(lr.warmEnd) {
		us := now.Sub(due).Microseconds()
		if err := lr.hist.RecordValue(max(us, latencyMinMicros)); err != nil {
			lr.overflow++
		}
		lr.recorded++
	}
	if len(lr.ids) < cap(lr.ids) {
		lr.ids = append(lr.ids, id)
	} else {
		lr.extra++
	}
	finished := len(lr.ids) == lr.n
	if finished {
		lr.last = now
	}
	lr.mu.Unlock()
	if finished {
		lr.doneOnce.Do(func() { close(lr.done) })
	}
}

// latencyConsumer starts a row's consumer on s (the durable named durable
// exists when the row needs the harness's shared settings) and calls seen at
// every handler's entry. It returns once the consumer receives; stop ends it
// and releases what it holds.
type latencyConsumer func(ctx context.Context, env *Env, s Stream, durable string, seen func(due time.Time, id string)) (stop func() error, err error)

// latencyConsumers are the rows' consumers.
var latencyConsumers = map[LatencyRow]struct {
	sharedDurable bool // the harness creates the durable (ConsumerConfig)
	start         latencyConsumer
}{
	LatencyRaw:             {true, rawLatencyConsumer},
	LatencyRouterDefault:   {false, routerLatencyConsumer(routerOpts{})},
	LatencyRouterConc8:     {false, routerLatencyConsumer(routerOpts{concurrency: 8})},
	LatencyRouterKV:        {false, routerLatencyConsumer(routerOpts{idempotency: true})},
	LatencyRouterKeyed:     {false, routerLatencyConsumer(routerOpts{concurrency: 8, orderKey: KeyedOrderKey})},
	LatencyWatermillRouter: {true, watermillLatencyConsumer},
}

// MeasureLatency runs one open-loop trial of row: a fresh stream, the
// row's consumer started and receiving, then the publisher at p.Rate for
// p.Duration; it returns once every event was handled (or p.Drain passed
// after the last send: an error) and checks that each was handled exactly
// once and acked.
func MeasureLatency(ctx context.Context, env *Env, row LatencyRow, p LatencyParams) (LatencyResult, error) {
	p.setDefaults()
	if p.Rate <= 0 {
		return LatencyResult{}, fmt.Errorf("bench: latency %s: rate %.0f must be positive", row, p.Rate)
	}
	n := int(p.Rate * p.Duration.Seconds())
	if n < 1 {
		return LatencyResult{}, fmt.Errorf("bench: latency %s: %.0f events/s for %s is no event", row, p.Rate, p.Duration)
	}
	return measureLatency(ctx, env, row, p, n)
}

// MeasureCapacity is the highest rate row sustains while the publisher runs
// beside it on the same machine: n events of size bytes published as fast
// as the publisher's async window allows (no schedule), events per second
// from the first send until the last was handled. It is what the latency
// loads are fractions of: the consume-only maximum (the router operation's
// trials, from a pre-filled stream) leaves out the publisher's and the
// server's storing work that runs beside the consumer under load.
func MeasureCapacity(ctx context.Context, env *Env, row LatencyRow, size, n int) (float64, error) {
	if n < 1 {
		return 0, fmt.Errorf("bench: capacity %s: %d events", row, n)
	}
	p := LatencyParams{Rate: math.Inf(1), Size: size}
	p.setDefaults()
	r, err := measureLatency(ctx, env, row, p, n)
	if err != nil {
		return 0, err
	}
	return float64(n) / r.Elapsed.Seconds(), nil
}

func measureLatency(ctx context.Context, env *Env, row LatencyRow, p LatencyParams, n int) (res LatencyResult, err error) {
	c, ok := latencyConsumers[row]
	if !ok {
		return res, fmt.Errorf("bench: latency: row %q is not measured (%s)", row, LatencyPending[row])
	}
	data, err := Data(p.Size)
	if err != nil {
		return res, err
	}
	s, err := env.NewStream(ctx)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, env.DeleteStream(context.Background(), s)) }()
	durable := env.DurableName()
	if c.sharedDurable {
		if err := env.NewDurable(ctx, s, durable, Params{MaxAckPending: 1000}); err != nil {
			return res, err
		}
	}
	lr := newLatencyRecorder(n)
	stop, err := c.start(ctx, env, s, durable, lr.seen)
	if err != nil {
		return res, fmt.Errorf("bench: latency %s: %w", row, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errors.Join(err, stop())
		}
	}()

	nc, err := env.Connect("bench-latency-publisher")
	if err != nil {
		return res, err
	}
	defer nc.Close()
	var pubFailed atomic.Int64
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(p.Window),
		natsjs.WithPublishAsyncErrHandler(func(natsjs.JetStream, *nats.Msg, error) { pubFailed.Add(1) }))
	if err != nil {
		return res, err
	}

	// The first event is due a little after now, so that the publisher's
	// own start is not counted.
	lr.start = time.Now().Add(10 * time.Millisecond)
	lr.warmEnd = lr.start.Add(p.Warmup)
	lag := NewLatencyHistogram()
	ids, err := publishOpenLoop(ctx, js, s.Subject, data, p.Rate, n, lr.start, lr.warmEnd, lag)
	if err != nil {
		return res, fmt.Errorf("bench: latency %s: publish: %w", row, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(p.Drain):
		return res, fmt.Errorf("bench: latency %s: %d publishes unacked after %s", row, js.PublishAsyncPending(), p.Drain)
	}
	if k := pubFailed.Load(); k > 0 {
		return res, fmt.Errorf("bench: latency %s: %d publishes failed", row, k)
	}
	select {
	case <-lr.done:
	case <-time.After(p.Drain):
		lr.mu.Lock()
		got := len(lr.ids)
		lr.mu.Unlock()
		return res, fmt.Errorf("bench: latency %s at %.0f/s: %d of %d events handled %s after the last send", row, p.Rate, got, n, p.Drain)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	stopped = true
	if err := stop(); err != nil {
		return res, fmt.Errorf("bench: latency %s: stop: %w", row, err)
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if err := checkIDList(ids, lr.ids, lr.extra); err != nil {
		return res, fmt.Errorf("bench: latency %s: %w", row, err)
	}
	if lr.overflow > 0 {
		return res, fmt.Errorf("bench: latency %s: %d latencies beyond the histogram's %s", row, lr.overflow, time.Duration(latencyMaxMicros)*time.Microsecond)
	}
	if err := env.VerifyAcked(ctx, s, durable, n, 10*time.Second); err != nil {
		return res, fmt.Errorf("bench: latency %s: %w", row, err)
	}
	return LatencyResult{
		Row: row, Size: p.Size, Rate: p.Rate, Sent: n, Recorded: lr.recorded,
		Latency: lr.hist, SendLag: lag, Elapsed: lr.last.Sub(lr.start),
		Behind: lr.last.Sub(lr.start.Add(time.Duration(float64(n-1) * float64(time.Second) / p.Rate))),
	}, nil
}

// publishOpenLoop publishes n events on subject, event i due at start +
// i/rate with that due time as its timestamp, never before it is due. It
// sleeps until the next event is due and then sends every event due by
// then, so a late wake-up or a full window delays events without shifting
// the schedule of the ones after. It records each event's send lag after
// warmEnd and returns the ids in send order.
func publishOpenLoop(ctx context.Context, js natsjs.JetStream, subject string, data []byte, rate float64, n int, start, warmEnd time.Time, lag *hdrhistogram.Histogram) ([]string, error) {
	ids := make([]string, n)
	interval := float64(time.Second) / rate // 0 for an infinite rate: all due at once
	for i := range n {
		due := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		e := newEvent(data)
		e.Timestamp = due
		ids[i] = e.ID
		msg, err := RawMsg(subject, &e)
		if err != nil {
			return nil, err
		}
		if _, err := publishAsyncRetry(ctx, js, msg); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if !due.Before(warmEnd) {
			_ = lag.RecordValue(max(time.Since(due).Microseconds(), latencyMinMicros))
		}
	}
	return ids, nil
}

// checkIDList reports whether got holds every id of want exactly once.
func checkIDList(want, got []string, extra int) error {
	if extra > 0 || len(got) != len(want) {
		return fmt.Errorf("%w: %d events handled, want %d", ErrVerify, len(got)+extra, len(want))
	}
	set := make(map[string]bool, len(want))
	for _, id := range want {
		set[id] = true
	}
	for _, id := range got {
		if !set[id] {
			return fmt.Errorf("%w: event %q handled twice or never published", ErrVerify, id)
		}
		delete(set, id)
	}
	return nil
}

// rawLatencyConsumer is the raw consumer of the router rows: Consume (pull
// 500), encoding/json into UserEnvelope, Ack.
func rawLatencyConsumer(ctx context.Context, env *Env, s Stream, durable string, seen func(time.Time, string)) (func() error, error) {
	nc, cons, err := rawConsumer(ctx, env, "bench-latency-raw", s, durable)
	if err != nil {
		return nil, err
	}
	var failures failureLog
	cc, err := cons.Consume(func(m natsjs.Msg) {
		var e UserEnvelope
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			failures.add(err)
			return
		}
		seen(e.Timestamp, e.ID)
		if err := checkData(e.Data); err != nil {
			failures.add(err)
			return
		}
		if err := m.Ack(); err != nil {
			failures.add(err)
		}
	}, natsjs.PullMaxMessages(500))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return func() error {
		cc.Stop()
		<-cc.Closed()
		nc.Close()
		return failures.err()
	}, nil
}

// routerLatencyConsumer runs a router row's router (newBenchRouter) and
// returns once it runs.
func routerLatencyConsumer(o routerOpts) latencyConsumer {
	return func(ctx context.Context, env *Env, s Stream, durable string, seen func(time.Time, string)) (func() error, error) {
		nc, err := env.Connect("bench-latency-" + durable)
		if err != nil {
			return nil, err
		}
		var failures failureLog
		br, err := newBenchRouter(ctx, env, nc, s, durable, o, func(e *envelope.Event, d UserCreated) {
			seen(e.Timestamp, e.ID)
			if err := checkData(d); err != nil {
				failures.add(fmt.Errorf("event %s: %w", e.ID, err))
			}
		})
		if err != nil {
			nc.Close()
			return nil, err
		}
		stop := func() error {
			err := br.stop()
			nc.Close()
			return errors.Join(err, failures.err())
		}
		br.start()
		select {
		case <-br.r.Running():
			return stop, nil
		case <-br.ended():
			return nil, errors.Join(fmt.Errorf("router ended before running: %w", br.runErr), stop())
		case <-time.After(30 * time.Second):
			return nil, errors.Join(errors.New("router not running after 30 s"), stop())
		}
	}
}
