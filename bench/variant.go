package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
)

// Op is a measured operation.
type Op string

// The measured operations (see the package documentation).
const (
	OpSync    Op = "sync"
	OpAsync   Op = "async"
	OpBatch   Op = "batch"
	OpConsume Op = "consume"
	OpRouter  Op = "router"
)

// Ops lists the operations in report order.
var Ops = []Op{OpSync, OpAsync, OpBatch, OpConsume, OpRouter}

// Impl names who does the work.
type Impl string

// The implementations compared. Each operation's baseline (see Baseline) is
// a raw nats.go variant.
const (
	// ImplRaw is the publishing baseline: hand-written nats.go code.
	ImplRaw       Impl = "raw"
	ImplJetevents Impl = "jetevents"
	ImplWatermill Impl = "watermill-nats"
	// ImplRawOurDecoder is the consume (transport) baseline: nats.go
	// Consume with this library's envelope decoder, so that the subscriber
	// rows compare transports with the same decoding on both sides. It is
	// not what a user writes: the router rows compare with
	// ImplRawConsumeJSON.
	ImplRawOurDecoder Impl = "raw-our-decoder"
)

// Baseline is the implementation the ratios of op are relative to: the first
// variant of VariantsOf(op).
func Baseline(op Op) Impl {
	switch op {
	case OpConsume:
		return ImplRawOurDecoder
	case OpRouter:
		return ImplRawConsumeJSON
	}
	return ImplRaw
}

// Params sizes a trial. The zero value of each field takes its default.
type Params struct {
	// N is the number of events published or consumed. Default 1000.
	N int
	// Size is the event data size in bytes. Default 512.
	Size int
	// Window is the maximum of pending async acks, for ours and raw alike.
	// Default 4096 (the library's default).
	Window int
	// Batch is the number of events per batch. Default 100.
	Batch int
	// MaxAckPending is the durable consumer's MaxAckPending. Default 1000
	// (the library's default).
	MaxAckPending int
	// PullBatch is how many messages a pull consumer asks for at a time, the
	// same for every consume variant. Default 500 (nats.go's Consume default).
	PullBatch int
	// Timeout bounds one trial's run. Default 5 minutes.
	Timeout time.Duration
}

func (p *Params) setDefaults() {
	if p.N == 0 {
		p.N = 1000
	}
	if p.Size == 0 {
		p.Size = 512
	}
	if p.Window == 0 {
		p.Window = 4096
	}
	if p.Batch == 0 {
		p.Batch = 100
	}
	if p.MaxAckPending == 0 {
		p.MaxAckPending = 1000
	}
	if p.PullBatch == 0 {
		p.PullBatch = 500
	}
	if p.Timeout == 0 {
		p.Timeout = 5 * time.Minute
	}
}

// Trial is one prepared measurement: Run is the measured work, Verify checks
// afterwards that it did all of it, Close releases everything.
type Trial struct {
	// N is the number of messages Run handles.
	N      int
	run    func(ctx context.Context) error
	verify func(ctx context.Context) error
	close  []func() error
}

// Run does the measured work. Nothing else (stream creation, event building,
// pre-filling, connecting) happens inside it.
func (t *Trial) Run(ctx context.Context) error { return t.run(ctx) }

// Verify checks that Run stored or consumed every message (ErrVerify if not).
func (t *Trial) Verify(ctx context.Context) error { return t.verify(ctx) }

// Close releases the trial's subscriber or publisher, connection and stream,
// last opened first closed, and reports what failed to close.
func (t *Trial) Close() error {
	var errs []error
	for i := len(t.close) - 1; i >= 0; i-- {
		errs = append(errs, t.close[i]())
	}
	t.close = nil
	return errors.Join(errs...)
}

func (t *Trial) onClose(f func() error) { t.close = append(t.close, f) }

func (t *Trial) onCloseFunc(f func()) { t.onClose(func() error { f(); return nil }) }

// Variant is one implementation of one operation.
type Variant struct {
	Op   Op
	Impl Impl
	// What says in a few words what is measured.
	What    string
	prepare func(ctx context.Context, env *Env, p Params) (*Trial, error)
}

// Name is "op/impl".
func (v Variant) Name() string { return string(v.Op) + "/" + string(v.Impl) }

// Prepare sets up a trial of p.N events of p.Size bytes: it builds the
// events, creates the trial's stream (and, to consume, fills it and creates a
// fresh durable), and connects. None of this is measured.
func (v Variant) Prepare(ctx context.Context, env *Env, p Params) (*Trial, error) {
	p.setDefaults()
	t, err := v.prepare(ctx, env, p)
	if err != nil {
		return nil, fmt.Errorf("bench: prepare %s: %w", v.Name(), err)
	}
	return t, nil
}

// Variants lists every variant, each operation's baseline first.
func Variants() []Variant {
	var vs []Variant
	for _, op := range Ops {
		vs = append(vs, VariantsOf(op)...)
	}
	return vs
}

// VariantsOf lists the variants of one operation, its baseline first.
func VariantsOf(op Op) []Variant {
	var vs []Variant
	for _, v := range []Variant{
		rawSync, jeteventsSync, watermillSync,
		rawAsync, jeteventsAsync,
		rawBatch, jeteventsBatch, jeteventsMessageBatch, watermillBatch,
		rawConsume, jeteventsConsume, jeteventsDefaultsConsume, watermillConsume,
		rawConsumeJSON, routerDefault, routerKVIdempotency, routerConc8Sleep1ms, rawConc8Sleep1ms, watermillRouter,
	} {
		if v.Op == op && v.prepare != nil {
			vs = append(vs, v)
		}
	}
	return vs
}

// newTrial builds a trial's events and its fresh stream, deleted when the
// trial closes: the prologue every publish and consume trial shares.
func newTrial(ctx context.Context, env *Env, p Params) (*Trial, Stream, []*envelope.Event, error) {
	events, err := Events(p.N, p.Size)
	if err != nil {
		return nil, Stream{}, nil, err
	}
	s, err := env.NewStream(ctx)
	if err != nil {
		return nil, Stream{}, nil, err
	}
	t := &Trial{N: p.N}
	t.onClose(func() error { return env.DeleteStream(context.Background(), s) })
	return t, s, events, nil
}

// publishSetup is what a publish variant builds on the trial's connection:
// the measured run and an optional close.
type publishSetup func(ctx context.Context, nc *nats.Conn, s Stream, p Params, events []*envelope.Event) (run func(ctx context.Context) error, closeFn func() error, err error)

// publishTrial wraps a publish variant: fresh stream, own connection, events
// built beforehand, and a check that the stream holds exactly those events.
func publishTrial(name string, setup publishSetup) func(ctx context.Context, env *Env, p Params) (*Trial, error) {
	return func(ctx context.Context, env *Env, p Params) (t *Trial, err error) {
		t, s, events, err := newTrial(ctx, env, p)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = t.Close()
			}
		}()
		nc, err := env.Connect(name)
		if err != nil {
			return nil, err
		}
		t.onCloseFunc(nc.Close)
		run, closeFn, err := setup(ctx, nc, s, p, events)
		if err != nil {
			return nil, err
		}
		if closeFn != nil {
			t.onClose(closeFn)
		}
		t.run = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.Timeout)
			defer cancel()
			return run(ctx)
		}
		t.verify = func(ctx context.Context) error {
			return env.VerifyStored(ctx, s, events)
		}
		return t, nil
	}
}

// consumeSetup is what a consume variant builds: a run that must hand every
// consumed event id to record (once per message, in delivery order) and ack it,
// returning once n messages were handled.
type consumeSetup func(ctx context.Context, env *Env, s Stream, durable string, p Params, record func(id string)) (run func(ctx context.Context) error, closeFn func() error, err error)

// consumeTrial wraps a consume variant: fresh stream pre-filled with N events
// in our wire format, a fresh durable with the shared settings, and checks
// that every event was handed over exactly once and acked on the server.
func consumeTrial(setup consumeSetup) func(ctx context.Context, env *Env, p Params) (*Trial, error) {
	return prefilledTrial(setup, true)
}

// ownDurableTrial is consumeTrial for a variant that creates its durable
// itself, as the router does from its group's config: the harness only
// names it (fresh per trial) and checks it afterwards.
func ownDurableTrial(setup consumeSetup) func(ctx context.Context, env *Env, p Params) (*Trial, error) {
	return prefilledTrial(setup, false)
}

func prefilledTrial(setup consumeSetup, createDurable bool) func(ctx context.Context, env *Env, p Params) (*Trial, error) {
	return func(ctx context.Context, env *Env, p Params) (t *Trial, err error) {
		t, s, events, err := newTrial(ctx, env, p)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = t.Close()
			}
		}()
		if err := env.Prefill(ctx, s, events); err != nil {
			return nil, err
		}
		durable := env.DurableName()
		if createDurable {
			if err := env.NewDurable(ctx, s, durable, p); err != nil {
				return nil, err
			}
		}
		// Preallocated; the uncontended lock (tens of ns against tens of
		// µs per message) keeps a late redelivery from racing with Verify.
		var mu sync.Mutex
		ids := make([]string, 0, p.N)
		extra := 0
		record := func(id string) {
			mu.Lock()
			if len(ids) < cap(ids) {
				ids = append(ids, id)
			} else {
				extra++
			}
			mu.Unlock()
		}
		run, closeFn, err := setup(ctx, env, s, durable, p, record)
		if err != nil {
			return nil, err
		}
		if closeFn != nil {
			t.onClose(closeFn)
		}
		t.run = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.Timeout)
			defer cancel()
			return run(ctx)
		}
		t.verify = func(ctx context.Context) error {
			mu.Lock()
			err := checkIDs(events, ids, extra)
			mu.Unlock()
			if err != nil {
				return err
			}
			return env.VerifyAcked(ctx, s, durable, p.N, 10*time.Second)
		}
		return t, nil
	}
}

// checkIDs reports whether ids holds every event's id exactly once.
func checkIDs(events []*envelope.Event, ids []string, extra int) error {
	if extra > 0 || len(ids) != len(events) {
		return fmt.Errorf("%w: %d messages handed over, want %d", ErrVerify, len(ids)+extra, len(events))
	}
	want := make(map[string]bool, len(events))
	for _, e := range events {
		want[e.ID] = true
	}
	for _, id := range ids {
		if !want[id] {
			return fmt.Errorf("%w: event %q handed over twice or never published", ErrVerify, id)
		}
		delete(want, id)
	}
	return nil
}

// failureLog counts the failures of a trial's handlers (bad data, a failed
// ack) and keeps the first, so that the run reports them instead of being
// measured. Safe for concurrent use.
type failureLog struct {
	mu    sync.Mutex
	n     int
	first error
}

func (f *failureLog) add(err error) {
	f.mu.Lock()
	if f.n++; f.first == nil {
		f.first = err
	}
	f.mu.Unlock()
}

// err is nil when nothing failed.
func (f *failureLog) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return nil
	}
	return fmt.Errorf("%d messages failed, first: %w", f.n, f.first)
}

// waitDone waits for done or the context, whichever comes first.
func waitDone(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: %s: %w", what, ctx.Err())
	}
}
