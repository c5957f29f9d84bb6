package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// SoakParams sizes a soak run. The zero value of each field takes its
// default.
type SoakParams struct {
	// N is the number of events handled in all. Default 1,000,000.
	N int
	// Every is the number of events between two samples, and of one
	// published chunk. Default 100,000.
	Every int
	// Size is the event data size in bytes. Default 512.
	Size int
	// Window is the publisher's maximum of pending async acks. Default 4096.
	Window int
	// ChunkTimeout bounds publishing and handling one chunk. Default 5
	// minutes.
	ChunkTimeout time.Duration
	// ServerPID, when > 0, is the process of the server (see StartServer),
	// whose RSS is sampled too. Default 0: the server is embedded, its
	// memory is in RSS.
	ServerPID int
}

func (p *SoakParams) setDefaults() {
	if p.N == 0 {
		p.N = 1_000_000
	}
	if p.Every == 0 {
		p.Every = 100_000
	}
	if p.Size == 0 {
		p.Size = 512
	}
	if p.Window == 0 {
		p.Window = 4096
	}
	if p.ChunkTimeout == 0 {
		p.ChunkTimeout = 5 * time.Minute
	}
}

// SoakSample is the process's state once Events events were handled.
type SoakSample struct {
	// Events is the number of events handled so far.
	Events int
	// RSS is this process's resident set size in bytes (the router and the
	// publisher feeding it, and the server when it is embedded); 0 where
	// it cannot be read (see RSS).
	RSS uint64
	// ServerRSS is the server process's RSS (SoakParams.ServerPID); 0 when
	// not sampled.
	ServerRSS uint64
	// HeapInuse is the Go heap in use (runtime.MemStats.HeapInuse), client
	// and server.
	HeapInuse uint64
	// Goroutines is runtime.NumGoroutine(), client and server.
	Goroutines int
	// Chunk is the time it took to publish and handle the events since the
	// previous sample (0 for the first).
	Chunk time.Duration
}

// Soak runs the router-default row's router (same config, same handler) for
// p.N events on one stream and calls sample before the first event and
// after every p.Every events handled. Events are published in chunks of
// p.Every while the router runs, each chunk once the previous one was
// handled, so that neither the stream (capped at two chunks) nor the
// process holds more than a chunk's worth: a growing RSS is the router's.
// Events carry no Nats-Msg-Id, so that the server's de-duplication window
// does not hold a million ids either. Soak fails (ErrVerify) unless every
// event was handled exactly once and acked, and the router shut down
// cleanly.
func Soak(ctx context.Context, env *Env, p SoakParams, sample func(SoakSample)) (err error) {
	p.setDefaults()
	data, err := Data(p.Size)
	if err != nil {
		return err
	}
	s, err := env.newStream(ctx, 2*int64(p.Every))
	if err != nil {
		return err
	}
	defer func() {
		if derr := env.DeleteStream(context.Background(), s); err == nil {
			err = derr
		}
	}()
	nc, err := env.Connect("bench-soak")
	if err != nil {
		return err
	}
	defer nc.Close()

	var (
		handled  atomic.Int64
		failures failureLog
		// One send per multiple of Every, and one for N: never blocks.
		reached = make(chan int64, p.N/p.Every+2)
	)
	durable := env.DurableName()
	br, err := newBenchRouter(ctx, env, nc, s, durable, routerOpts{}, func(e *envelope.Event, d UserCreated) {
		if err := checkData(d); err != nil {
			failures.add(fmt.Errorf("event %s: %w", e.ID, err))
		}
		if n := handled.Add(1); n <= int64(p.N) && (n%int64(p.Every) == 0 || n == int64(p.N)) {
			reached <- n
		}
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := br.stop(); err == nil {
			err = serr
		}
	}()
	br.start()
	select {
	case <-br.r.Running():
	case <-br.ended():
		return fmt.Errorf("bench: soak: router ended at start: %w", br.runErr)
	case <-time.After(p.ChunkTimeout):
		return fmt.Errorf("bench: soak: router not running after %s", p.ChunkTimeout)
	}

	var failed atomic.Int64
	js, err := natsjs.New(env.admin,
		natsjs.WithPublishAsyncMaxPending(p.Window),
		natsjs.WithPublishAsyncErrHandler(func(natsjs.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return fmt.Errorf("bench: soak: %w", err)
	}
	m := marshaler.Default()
	sample(takeSample(0, 0, p.ServerPID))
	for done := 0; done < p.N; {
		chunk := min(p.Every, p.N-done)
		start := time.Now()
		deadline := time.After(p.ChunkTimeout)
		for range chunk {
			e := newEvent(data)
			msg, err := m.EventToNATS(s.Subject, &e, marshaler.Relations{})
			if err != nil {
				return fmt.Errorf("bench: soak: %w", err)
			}
			msg.Header.Del(nats.MsgIdHdr)
			if _, err := js.PublishMsgAsync(msg, natsjs.WithStallWait(p.ChunkTimeout)); err != nil {
				return fmt.Errorf("bench: soak: publish: %w", err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-deadline:
			return fmt.Errorf("bench: soak: publishes at %d not acked within %s", done, p.ChunkTimeout)
		}
		if n := failed.Load(); n > 0 {
			return fmt.Errorf("bench: soak: %d publishes failed", n)
		}
		done += chunk
		for got := int64(0); got < int64(done); {
			select {
			case got = <-reached:
			case <-br.ended():
				return fmt.Errorf("bench: soak: router ended after %d events: %w", handled.Load(), br.runErr)
			case <-deadline:
				return fmt.Errorf("%w: soak: %d of %d events handled after %s", ErrVerify, handled.Load(), done, p.ChunkTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sample(takeSample(done, time.Since(start), p.ServerPID))
	}
	if err := env.VerifyAcked(ctx, s, durable, p.N, 30*time.Second); err != nil {
		return err
	}
	if n := handled.Load(); n != int64(p.N) {
		return fmt.Errorf("%w: soak: %d deliveries handled for %d events", ErrVerify, n, p.N)
	}
	return failures.err()
}

func takeSample(events int, chunk time.Duration, serverPID int) SoakSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := SoakSample{Events: events, HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(), Chunk: chunk}
	// 0 where unavailable; the table says n/a.
	s.RSS, _ = RSS()
	if serverPID > 0 {
		s.ServerRSS, _ = RSSOf(serverPID)
	}
	return s
}

// WriteSoakHeader writes the header of the soak table WriteSoakRow fills.
func WriteSoakHeader(w io.Writer) error {
	_, err := io.WriteString(w, "| events | RSS MiB | heap in use MiB | goroutines | server RSS MiB | chunk (publish + handle) |\n"+
		"| ---: | ---: | ---: | ---: | ---: | ---: |\n")
	return err
}

// WriteSoakRow writes one sample as a row of the soak table.
func WriteSoakRow(w io.Writer, s SoakSample) error {
	chunk := ""
	if s.Chunk > 0 {
		chunk = s.Chunk.Round(time.Millisecond).String()
	}
	_, err := fmt.Fprintf(w, "| %d | %s | %.1f | %d | %s | %s |\n",
		s.Events, mib(s.RSS), float64(s.HeapInuse)/(1<<20), s.Goroutines, mib(s.ServerRSS), chunk)
	return err
}

// mib formats bytes in MiB, "n/a" for 0 (not measured).
func mib(b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}
