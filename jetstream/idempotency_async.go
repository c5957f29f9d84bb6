package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// kvPipeline sends a KVStore's asynchronous writes (prefetched claims,
// processed marks) as plain publishes with a reply subject, and reads the
// stream's acknowledgements on one wildcard subscription of its own.
//
// Why not nats.go's PublishMsgAsync, which does the same: it is the
// idempotency row's largest client-side cost. Each publish there allocates
// a future, its two channels and a map entry, and each acknowledgement is
// decoded with encoding/json into a PubAck; with two writes per event that
// was about 10 µs of CPU and 30 allocations per event (profile of
// BenchmarkRouterKVIdempotency, 512 B). Here an operation is one struct
// with one channel (claims only: marks are not waited for), and an
// acknowledgement is read by finding its "seq" (encoding/json only for the
// rare error replies). The wire protocol is the same: a JetStream publish
// is a publish with a reply subject, answered by a PubAck.
type kvPipeline struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	prefix string // "<inbox>." + token

	// onMarkErr receives the failure of a processed mark (its key).
	onMarkErr func(key string, err error)

	mu      sync.Mutex
	next    uint64
	pending map[uint64]*kvOp
	marks   int           // marks in flight
	idle    chan struct{} // closed when marks drops to 0; nil while none waits
}

// kvOp is one write in flight.
type kvOp struct {
	key  string        // the idempotency key, for errors
	done chan struct{} // closed once answered (claims; nil for marks)
	seq  uint64        // the stored message's sequence (the key's revision)
	err  error         // errKVKeyExists, or the failure

	// A mark keeps what it sent, to send it again after a reconnect.
	subject string
	data    []byte
}

// errKVKeyExists is a claim refused because the key has a record: the
// caller reads it and decides (KVStore.Claim).
var errKVKeyExists = errors.New("key exists")

// maxPendingMarks bounds the marks in flight: past it, Complete stores the
// mark synchronously (backpressure, and a bound on the memory a server
// that stopped answering could hold).
const maxPendingMarks = 1 << 16

func newKVPipeline(nc *nats.Conn, onMarkErr func(key string, err error)) (*kvPipeline, error) {
	p := &kvPipeline{nc: nc, prefix: nc.NewRespInbox() + ".", pending: make(map[uint64]*kvOp), onMarkErr: onMarkErr}
	sub, err := nc.Subscribe(p.prefix+"*", p.onReply)
	if err != nil {
		return nil, err
	}
	// Replies are small and must not be dropped as a slow consumer: a lost
	// claim answer costs a fallback to the synchronous claim, a lost mark
	// answer a Flush that waits for nothing.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	p.sub = sub
	// A reply lost with the connection never comes: at a disconnect the
	// claims in flight fail at once (their waiters fall back to a
	// synchronous claim, which waits for the reconnect) and the marks in
	// flight are sent again (buffered by the client until it reconnects;
	// a mark stored twice is the same record). The watcher ends with the
	// connection.
	status := nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go p.watch(status)
	return p, nil
}

// watch handles the connection's disconnects until it closes.
func (p *kvPipeline) watch(status chan nats.Status) {
	defer p.nc.RemoveStatusListener(status)
	for st := range status {
		if st == nats.CLOSED {
			p.abandon(nats.ErrConnectionClosed, false)
			return
		}
		p.abandon(nats.ErrDisconnected, true)
	}
}

// abandon gives up the answers in flight: claims fail with err; marks are
// sent again under new ids when resend, else reported with err.
func (p *kvPipeline) abandon(err error, resend bool) {
	type again struct {
		id uint64
		op *kvOp
	}
	var claims []*kvOp
	var marks []again
	p.mu.Lock()
	for id, op := range p.pending {
		delete(p.pending, id)
		if op.done != nil {
			claims = append(claims, op)
			continue
		}
		if !resend {
			p.markDoneLocked()
			marks = append(marks, again{0, op})
			continue
		}
		// Re-registered at once, so that the count of marks in flight
		// (Flush) never drops to 0 meanwhile.
		p.next++
		p.pending[p.next] = op
		marks = append(marks, again{p.next, op})
	}
	p.mu.Unlock()
	for _, op := range claims {
		op.err = err
		close(op.done)
	}
	for _, m := range marks {
		if m.id == 0 {
			p.reportMark(m.op.key, err)
			continue
		}
		reply := p.prefix + strconv.FormatUint(m.id, 36)
		if perr := p.nc.PublishMsg(&nats.Msg{Subject: m.op.subject, Reply: reply, Data: m.op.data}); perr != nil {
			p.forget(m.id, true)
			p.reportMark(m.op.key, fmt.Errorf("%w; sending it again: %w", err, perr))
		}
	}
}

func (p *kvPipeline) reportMark(key string, err error) {
	if p.onMarkErr != nil {
		p.onMarkErr(key, err)
	}
}

// send publishes data on subject (with hdr, which is only read) and
// registers op for its answer under the returned id.
func (p *kvPipeline) send(subject string, hdr nats.Header, data []byte, op *kvOp, mark bool) (uint64, error) {
	p.mu.Lock()
	if mark && p.marks >= maxPendingMarks {
		p.mu.Unlock()
		return 0, errTooManyMarks
	}
	p.next++
	id := p.next
	p.pending[id] = op
	if mark {
		p.marks++
	}
	p.mu.Unlock()
	reply := p.prefix + strconv.FormatUint(id, 36)
	if err := p.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Header: hdr, Data: data}); err != nil {
		p.forget(id, mark)
		return 0, err
	}
	return id, nil
}

var errTooManyMarks = errors.New("too many processed marks in flight")

// forget drops op id without an answer (its send failed, or its waiter gave
// up).
func (p *kvPipeline) forget(id uint64, mark bool) {
	p.mu.Lock()
	if _, ok := p.pending[id]; ok {
		delete(p.pending, id)
		if mark {
			p.markDoneLocked()
		}
	}
	p.mu.Unlock()
}

func (p *kvPipeline) markDoneLocked() {
	p.marks--
	if p.marks == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// onReply is the stream's answer to one write.
func (p *kvPipeline) onReply(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 36, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	op, ok := p.pending[id]
	if ok {
		delete(p.pending, id)
	}
	p.mu.Unlock()
	if !ok {
		return // its waiter gave up
	}
	op.seq, op.err = parsePubAck(m)
	if op.done != nil {
		close(op.done)
		return
	}
	if op.err != nil {
		p.reportMark(op.key, op.err)
	}
	p.mu.Lock()
	p.markDoneLocked()
	p.mu.Unlock()
}

// parsePubAck reads a JetStream publish acknowledgement: the stored
// sequence, errKVKeyExists for a "wrong last sequence" refusal (the key
// exists: 10071, or 10164 on replicated streams), another error otherwise.
func parsePubAck(m *nats.Msg) (uint64, error) {
	if st := m.Header.Get("Status"); st != "" {
		if st == "503" {
			return 0, nats.ErrNoResponders
		}
		return 0, fmt.Errorf("status %s %s", st, m.Header.Get("Description"))
	}
	data := m.Data
	if !bytes.Contains(data, []byte(`"error"`)) {
		if i := bytes.Index(data, []byte(`"seq":`)); i >= 0 {
			rest := data[i+len(`"seq":`):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if seq, err := strconv.ParseUint(string(rest[:j]), 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	var r struct {
		Seq   uint64 `json:"seq"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("malformed acknowledgement %q: %w", data, err)
	}
	switch {
	case r.Error == nil && r.Seq > 0:
		return r.Seq, nil
	case r.Error == nil:
		return 0, fmt.Errorf("acknowledgement without a sequence: %q", data)
	case r.Error.ErrCode == int(natsjs.JSErrCodeStreamWrongLastSequence) || r.Error.ErrCode == int(natsjs.JSErrCodeStreamWrongLastSequenceConstant):
		return 0, errKVKeyExists
	}
	return 0, fmt.Errorf("%s (code %d, err_code %d)", r.Error.Description, r.Error.Code, r.Error.ErrCode)
}

// wait returns op's answer, or ctx's error (op forgotten).
func (p *kvPipeline) wait(ctx context.Context, id uint64, op *kvOp) (uint64, error) {
	select {
	case <-op.done:
		return op.seq, op.err
	default:
	}
	select {
	case <-op.done:
		return op.seq, op.err
	case <-ctx.Done():
		p.forget(id, false)
		return 0, ctx.Err()
	}
}

// claim sends a claim; the returned id and op are waited for with wait.
func (p *kvPipeline) claim(subject string, hdr nats.Header, data []byte, key string) (uint64, *kvOp, error) {
	op := &kvOp{key: key, done: make(chan struct{})}
	id, err := p.send(subject, hdr, data, op, false)
	if err != nil {
		return 0, nil, err
	}
	return id, op, nil
}

// mark sends a processed mark, not waited for: its failure goes to
// onMarkErr, and flush waits for it.
func (p *kvPipeline) mark(subject string, data []byte, key string) error {
	_, err := p.send(subject, nil, data, &kvOp{key: key, subject: subject, data: data}, true)
	return err
}

// flush waits until no mark is in flight, or ctx ends.
func (p *kvPipeline) flush(ctx context.Context) error {
	p.mu.Lock()
	if p.marks == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle, n := p.idle, p.marks
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d processed marks in flight: %w", n, ctx.Err())
	}
}
