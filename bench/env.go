package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// ErrVerify reports that a trial did not store or consume every message it
// was asked to: the measurement of that trial is meaningless.
var ErrVerify = errors.New("bench: verification failed")

// Env is one JetStream server shared by every trial of a run (embedded, or
// another process's for Dial), plus an admin connection used for stream and
// consumer management (never measured).
type Env struct {
	srv   *embedded.Server // nil for Dial
	url   string
	admin *nats.Conn
	js    natsjs.JetStream
	seq   atomic.Int64
}

// Start starts the embedded server with its file store in storeDir ("" = a
// new temporary directory, removed by Close) and connects the admin client.
func Start(storeDir string) (*Env, error) {
	srv, err := embedded.Start(embedded.Config{StoreDir: storeDir, ServerName: "jetevents-bench"})
	if err != nil {
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	env, err := Dial(srv.URL())
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	env.srv = srv
	return env, nil
}

// StartServer starts an embedded server alone, for a process that serves
// another one's Dial (the soak keeps the server out of the RSS it samples).
func StartServer(storeDir string) (*embedded.Server, error) {
	srv, err := embedded.Start(embedded.Config{StoreDir: storeDir, ServerName: "jetevents-bench"})
	if err != nil {
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	return srv, nil
}

// Dial connects the admin client to a running JetStream server at url;
// Close then leaves the server running.
func Dial(url string) (*Env, error) {
	nc, err := nats.Connect(url, nats.Name("jetevents-bench-admin"))
	if err != nil {
		return nil, fmt.Errorf("bench: connect admin: %w", err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return &Env{url: url, admin: nc, js: js}, nil
}

// URL is the server's client URL.
func (env *Env) URL() string { return env.url }

// JetStream is the admin JetStream context (for checks in tests).
func (env *Env) JetStream() natsjs.JetStream { return env.js }

// Close closes the admin connection and shuts the embedded server down (a
// dialled server keeps running).
func (env *Env) Close() {
	env.admin.Close()
	if env.srv != nil {
		env.srv.Shutdown()
	}
}

// Connect opens a plain client connection, as every variant uses: the same
// nats.go defaults for all, so that connection options cannot favour one.
func (env *Env) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(env.url, nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", name, err)
	}
	return nc, nil
}

// Stream is a stream created for one trial.
type Stream struct {
	// Name is the stream name (BENCH_<k>).
	Name string
	// Subject is the one subject events of the trial are published on; the
	// stream listens on bench.<k>.>.
	Subject string
}

// NewStream creates a fresh file-backed stream for one trial, so that no trial
// publishes into a store (or a de-duplication window) filled by another.
func (env *Env) NewStream(ctx context.Context) (Stream, error) { return env.newStream(ctx, 0) }

// newStream creates the stream; maxMsgs > 0 caps it (oldest discarded), for
// runs too long to keep every event on disk.
func (env *Env) newStream(ctx context.Context, maxMsgs int64) (Stream, error) {
	k := env.seq.Add(1)
	s := Stream{Name: fmt.Sprintf("BENCH_%d", k), Subject: fmt.Sprintf("bench.%d.user.created", k)}
	_, err := env.js.CreateStream(ctx, natsjs.StreamConfig{
		Name:      s.Name,
		Subjects:  []string{fmt.Sprintf("bench.%d.>", k)},
		Storage:   natsjs.FileStorage,
		Replicas:  1,
		Retention: natsjs.LimitsPolicy,
		// The default window (2 min); every event has a unique id, so no
		// publish is dropped as a duplicate, but each is checked.
		Duplicates: 2 * time.Minute,
		MaxMsgs:    maxMsgs, // 0: unlimited
	})
	if err != nil {
		return Stream{}, fmt.Errorf("bench: create stream %s: %w", s.Name, err)
	}
	return s, nil
}

// DeleteStream removes a trial's stream and its messages.
func (env *Env) DeleteStream(ctx context.Context, s Stream) error {
	if err := env.js.DeleteStream(ctx, s.Name); err != nil && !errors.Is(err, natsjs.ErrStreamNotFound) {
		return fmt.Errorf("bench: delete stream %s: %w", s.Name, err)
	}
	return nil
}

// Prefill publishes events to s in our wire format (marshaler.EventToNATS),
// pipelined, and waits for every ack. It is the unmeasured setup of the
// consume trials, so every consume variant reads byte-identical messages.
func (env *Env) Prefill(ctx context.Context, s Stream, events []*envelope.Event) error {
	m := marshaler.Default()
	var failed atomic.Int64
	js, err := natsjs.New(env.admin,
		natsjs.WithPublishAsyncMaxPending(4096),
		natsjs.WithPublishAsyncErrHandler(func(natsjs.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return fmt.Errorf("bench: prefill: %w", err)
	}
	for _, e := range events {
		msg, err := m.EventToNATS(s.Subject, e, marshaler.Relations{})
		if err != nil {
			return fmt.Errorf("bench: prefill: %w", err)
		}
		if _, err := js.PublishMsgAsync(msg, natsjs.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("bench: prefill: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("bench: prefill: %w", ctx.Err())
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("bench: prefill: %d publishes failed", n)
	}
	return env.VerifyStored(ctx, s, events)
}

// VerifyStored checks that s holds exactly the given events, in order: the
// count matches, and the first and last stored messages decode (through the
// wire contract's decoder) to the first and last event with Nats-Msg-Id set.
func (env *Env) VerifyStored(ctx context.Context, s Stream, events []*envelope.Event) error {
	st, err := env.js.Stream(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrVerify, s.Name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrVerify, s.Name, err)
	}
	if got := info.State.Msgs; got != uint64(len(events)) {
		return fmt.Errorf("%w: stream %s holds %d messages, want %d", ErrVerify, s.Name, got, len(events))
	}
	if len(events) == 0 {
		return nil
	}
	check := func(seq uint64, want *envelope.Event) error {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("%w: get %s #%d: %w", ErrVerify, s.Name, seq, err)
		}
		if got := raw.Header.Get(marshaler.HeaderMsgID); got != want.ID {
			return fmt.Errorf("%w: %s #%d has Nats-Msg-Id %q, want %q", ErrVerify, s.Name, seq, got, want.ID)
		}
		_, e, err := marshaler.Default().DecodeNATS(raw.Header, raw.Data)
		if err != nil {
			return fmt.Errorf("%w: %s #%d does not decode: %w", ErrVerify, s.Name, seq, err)
		}
		if e.ID != want.ID || string(e.Data) != string(want.Data) {
			return fmt.Errorf("%w: %s #%d is event %s, want %s", ErrVerify, s.Name, seq, e.ID, want.ID)
		}
		return nil
	}
	if err := check(info.State.FirstSeq, events[0]); err != nil {
		return err
	}
	return check(info.State.LastSeq, events[len(events)-1])
}

// DurableName returns a durable consumer name no other trial of the run uses.
func (env *Env) DurableName() string { return fmt.Sprintf("bench_%d", env.seq.Add(1)) }

// NewDurable creates the durable pull consumer name on s with the settings
// every consume variant shares.
func (env *Env) NewDurable(ctx context.Context, s Stream, name string, p Params) error {
	if _, err := env.js.CreateConsumer(ctx, s.Name, ConsumerConfig(name, s.Subject, p)); err != nil {
		return fmt.Errorf("bench: create consumer %s: %w", name, err)
	}
	return nil
}

// ConsumerConfig is the durable pull consumer every consume variant reads
// through: explicit ack, deliver all, the library's defaults for AckWait,
// MaxDeliver and MaxAckPending.
func ConsumerConfig(durable, subject string, p Params) natsjs.ConsumerConfig {
	return natsjs.ConsumerConfig{
		Durable:       durable,
		FilterSubject: subject,
		DeliverPolicy: natsjs.DeliverAllPolicy,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
		MaxAckPending: p.MaxAckPending,
	}
}

// VerifyAcked waits (up to timeout) until the durable has every one of n
// messages delivered and acked: nothing pending, nothing waiting for an ack.
func (env *Env) VerifyAcked(ctx context.Context, s Stream, durable string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := env.js.Consumer(ctx, s.Name, durable)
		if err != nil {
			return fmt.Errorf("%w: consumer %s: %w", ErrVerify, durable, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("%w: consumer %s: %w", ErrVerify, durable, err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream >= uint64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: consumer %s after %s: ack floor %d of %d, %d ack pending, %d not delivered",
				ErrVerify, durable, timeout, info.AckFloor.Stream, n, info.NumAckPending, info.NumPending)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrVerify, ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling the server's state, not guessing
		}
	}
}
