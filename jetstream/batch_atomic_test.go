package jetstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/jetevents/events/transport"
)

// atomicStream applies ORDERS on "orders.>" allowing atomic batches.
func atomicStream(t *testing.T) *eventstest.Server {
	t.Helper()
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(pubCtx(t), srv.JS, jetstream.StreamSpec{Name: "ORDERS", Subjects: []string{"orders.>"}, AllowAtomicPublish: true})
	require.NoError(t, err)
	return srv
}

// orderBatch is n events of order id, on orders.<id>.<type>.
func orderBatch(t *testing.T, id string, n int) []jetstream.AtomicEvent {
	t.Helper()
	out := make([]jetstream.AtomicEvent, n)
	for i := range out {
		typ := fmt.Sprintf("order.step%d", i)
		out[i] = jetstream.AtomicEvent{Subject: "orders." + id + "." + strings.ReplaceAll(typ, ".", "_"), Event: pubEvent(t, typ)}
	}
	return out
}

func TestPublishAtomic_committed_batch_has_contiguous_sequences_in_order(t *testing.T) {
	srv := atomicStream(t)
	p := pubNew(t, srv.Conn)
	ctx := pubCtx(t)

	// Another publisher writes to the same stream all along.
	other := pubNew(t, srv.Conn)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := other.PublishAsync(context.Background(), "orders.noise.created", pubEvent(t, "noise.created")); err != nil {
				return
			}
		}
	}()
	const n = 200
	var acks []jetstream.AtomicAck
	var batches [][]jetstream.AtomicEvent
	for i := range 5 {
		b := orderBatch(t, fmt.Sprintf("o%d", i), n)
		ack, err := p.PublishAtomic(ctx, b)
		require.NoError(t, err)
		acks, batches = append(acks, ack), append(batches, b)
	}
	close(stop)
	wg.Wait()
	require.NoError(t, other.Flush(ctx))

	st, err := srv.JS.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	for i, ack := range acks {
		assert.Equal(t, "ORDERS", ack.Stream)
		assert.Equal(t, n, ack.Count)
		assert.Equal(t, ack.FirstSequence+n-1, ack.LastSequence)
		for j, ae := range batches[i] {
			m, err := st.GetMsg(ctx, ack.FirstSequence+uint64(j))
			require.NoError(t, err)
			require.Equal(t, ae.Subject, m.Subject, "batch %d event %d at seq %d", i, j, ack.FirstSequence+uint64(j))
			require.Equal(t, ae.Event.ID, m.Header.Get(marshaler.HeaderID))
		}
	}
	assert.Equal(t, jetstream.PublisherStats{Published: 5 * n, Acked: 5 * n}, p.Stats())
}

func TestPublishAtomic_two_writers_with_the_same_expected_sequence_one_wins(t *testing.T) {
	srv := atomicStream(t)
	ctx := pubCtx(t)
	p1, p2 := pubNew(t, srv.Conn), pubNew(t, srv.Connect(t))
	created, err := p1.PublishAtomic(ctx, orderBatch(t, "o1", 1), transport.ExpectLastSequence("orders.o1.>", 0))
	require.NoError(t, err)

	for round := range 20 {
		last := lastSeq(t, srv.JS, "ORDERS", "orders.o1.>")
		start := make(chan struct{})
		type result struct {
			ack jetstream.AtomicAck
			err error
		}
		results := make([]result, 2)
		var wg sync.WaitGroup
		for i, p := range []*jetstream.Publisher{p1, p2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ack, err := p.PublishAtomic(ctx, orderBatch(t, "o1", 3), transport.ExpectLastSequence("orders.o1.>", last))
				results[i] = result{ack, err}
			}()
		}
		close(start)
		wg.Wait()
		var won []jetstream.AtomicAck
		var lost []error
		for _, r := range results {
			if r.err == nil {
				won = append(won, r.ack)
			} else {
				lost = append(lost, r.err)
			}
		}
		require.Len(t, won, 1, "round %d: exactly one writer wins: %v", round, lost)
		require.Len(t, lost, 1)
		var ce *jetstream.ConflictError
		require.ErrorAs(t, lost[0], &ce, "round %d", round)
		assert.ErrorIs(t, lost[0], transport.ErrConflict)
		assert.Equal(t, last, ce.Expected)
		assert.True(t, ce.CurrentKnown, "round %d: %v", round, lost[0])
		assert.Equal(t, won[0].LastSequence, ce.Current, "round %d: the loser learns the winner's last sequence", round)
		assert.Equal(t, won[0].LastSequence, lastSeq(t, srv.JS, "ORDERS", "orders.o1.>"))
	}
	assert.Equal(t, created.LastSequence+20*3, lastSeq(t, srv.JS, "ORDERS", ">"), "nothing of the losing batches was stored")
}

// lastSeq is the last sequence stored on filter (0 when none).
func lastSeq(t *testing.T, js natsjs.JetStream, stream, filter string) uint64 {
	t.Helper()
	st, err := js.Stream(pubCtx(t), stream)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(pubCtx(t), filter)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return 0
	}
	require.NoError(t, err)
	return m.Sequence
}

func TestPublishAtomic_connection_cut_mid_batch_stores_nothing(t *testing.T) {
	t.Parallel() // waits up to 10s for the server to abandon the batch
	srv := atomicStream(t)
	ctx := pubCtx(t)
	abandoned := make(chan string, 1)
	sub, err := srv.Conn.Subscribe("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.ORDERS", func(m *nats.Msg) {
		var adv struct {
			Batch, Reason string
		}
		_ = json.Unmarshal(m.Data, &adv)
		abandoned <- adv.Batch + " " + adv.Reason
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, srv.Conn.Flush())

	const n, k = 100, 37
	proxy := cutAfterBatchMessages(t, srv.URL, k)
	nc, err := nats.Connect(proxy.url, nats.NoReconnect())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	p := pubNew(t, nc, jetstream.PublisherConfig{PublishTimeout: 3 * time.Second})

	_, err = p.PublishAtomic(ctx, orderBatch(t, "o1", n))
	require.Error(t, err)
	t.Logf("cut after %d of %d: %v", k, n, err)
	assert.True(t, errors.Is(err, transport.ErrBatchAbandoned) || errors.Is(err, transport.ErrPublish), "%v", err)
	require.Equal(t, k, proxy.forwarded(), "the server got %d of the %d events", k, n)
	assert.Zero(t, pubCount(t, srv.JS, "ORDERS"), "nothing stored")

	select {
	case adv := <-abandoned:
		assert.Contains(t, adv, "timeout")
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not abandon the batch")
	}
	assert.Zero(t, pubCount(t, srv.JS, "ORDERS"), "nothing stored once the server dropped the batch")

	// The same batch again, on a sound connection: stored whole.
	ack, err := pubNew(t, srv.Conn).PublishAtomic(pubCtx(t), orderBatch(t, "o1", n))
	require.NoError(t, err)
	assert.Equal(t, n, ack.Count)
	assert.Equal(t, uint64(n), pubCount(t, srv.JS, "ORDERS"))
}

func TestPublishAtomic_refusals(t *testing.T) {
	srv := atomicStream(t)
	pubStream(t, srv.JS, "PLAIN", "plain.>")
	p := pubNew(t, srv.Conn)
	ctx := pubCtx(t)

	_, err := p.PublishAtomic(ctx, []jetstream.AtomicEvent{{Subject: "plain.a", Event: pubEvent(t, "a")}, {Subject: "plain.b", Event: pubEvent(t, "b")}})
	assert.ErrorIs(t, err, transport.ErrAtomicDisabled)
	assert.Contains(t, err.Error(), "stream PLAIN")
	assert.Contains(t, err.Error(), "allow_atomic")

	_, err = p.PublishAtomic(ctx, []jetstream.AtomicEvent{{Subject: "nowhere.a", Event: pubEvent(t, "a")}, {Subject: "nowhere.b", Event: pubEvent(t, "b")}})
	assert.ErrorIs(t, err, transport.ErrNoStream)

	_, err = p.PublishAtomic(ctx, orderBatch(t, "big", jetstream.MaxAtomicBatch+1))
	assert.ErrorIs(t, err, transport.ErrBatchTooLarge)

	_, err = p.PublishAtomic(ctx, orderBatch(t, "o1", 2), transport.After(time.Minute))
	assert.ErrorIs(t, err, transport.ErrInvalidOption)

	_, err = p.PublishAtomic(ctx, orderBatch(t, "o1", 2), transport.TTL(time.Minute))
	assert.ErrorIs(t, err, transport.ErrTTLDisabled)
	assert.Contains(t, err.Error(), "stream ORDERS")

	b := orderBatch(t, "o1", 3)
	b[1].Event.Type = ""
	_, err = p.PublishAtomic(ctx, b)
	var be *jetstream.BatchError
	require.ErrorAs(t, err, &be)
	assert.ErrorIs(t, be.Errs[1], envelope.ErrInvalidEvent)
	assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)

	twice := orderBatch(t, "o1", 2)
	twice[1].Event = twice[0].Event
	_, err = p.PublishAtomic(ctx, twice)
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)

	assert.Zero(t, pubCount(t, srv.JS, "ORDERS"))

	// A retried batch that committed the first time: ErrBatchDuplicate.
	again := orderBatch(t, "o2", 3)
	_, err = p.PublishAtomic(ctx, again)
	require.NoError(t, err)
	_, err = p.PublishAtomic(ctx, again)
	assert.ErrorIs(t, err, transport.ErrBatchDuplicate)
	assert.Equal(t, uint64(3), pubCount(t, srv.JS, "ORDERS"))

	ack, err := p.PublishAtomic(ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, ack.Count)
	require.NoError(t, p.Close())
	_, err = p.PublishAtomic(ctx, orderBatch(t, "o3", 1))
	assert.ErrorIs(t, err, transport.ErrClosed)
}

func TestPublishAtomic_single_event_batch(t *testing.T) {
	srv := atomicStream(t)
	p := pubNew(t, srv.Conn)
	ack, err := p.PublishAtomic(pubCtx(t), orderBatch(t, "o1", 1), transport.ExpectLastSequence("orders.o1.>", 0))
	require.NoError(t, err)
	assert.Equal(t, jetstream.AtomicAck{Stream: "ORDERS", FirstSequence: 1, LastSequence: 1, Count: 1, BatchID: ack.BatchID}, ack)
	_, err = p.PublishAtomic(pubCtx(t), orderBatch(t, "o1", 1), transport.ExpectLastSequence("orders.o1.>", 0))
	var ce *jetstream.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, uint64(1), ce.Current)
}

// batchCutProxy forwards a client's connection to a NATS server and cuts
// it (both ways, and refuses new connections) once k messages carrying a
// Nats-Batch-Id went through: the network failing in the middle of a batch.
type batchCutProxy struct {
	url string
	n   atomic.Int64
}

func (p *batchCutProxy) forwarded() int { return int(p.n.Load()) }

func cutAfterBatchMessages(t *testing.T, serverURL string, k int) *batchCutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &batchCutProxy{url: "nats://" + ln.Addr().String()}
	target := strings.TrimPrefix(serverURL, "nats://")
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		client, err := ln.Accept()
		_ = ln.Close() // one connection only
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", target)
		if err != nil {
			_ = client.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(client, server)
			_ = client.Close()
		}()
		defer func() { _ = client.Close(); _ = server.Close() }()
		r := bufio.NewReader(client)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var body []byte
			fields := strings.Fields(string(line))
			if len(fields) > 0 && (fields[0] == "HPUB" || fields[0] == "PUB") {
				size, err := strconv.Atoi(fields[len(fields)-1])
				if err != nil {
					return
				}
				body = make([]byte, size+2)
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
			}
			if _, err := server.Write(append(line, body...)); err != nil {
				return
			}
			if strings.Contains(string(body), "Nats-Batch-Id") && int(p.n.Add(1)) == k {
				return // cut
			}
		}
	}()
	return p
}
