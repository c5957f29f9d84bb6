package dlq

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Filter selects dead letters. The zero Filter selects every one.
type Filter struct {
	// Subject is a dead-letter subject filter (dlq.<original subject>, with
	// wildcards: dlq.auth.user.>). The server applies it: a page on a
	// subject reads only the messages on it.
	Subject string
	// Reason, Handler, Type and Organization must equal the dead letter's
	// reason (Dlq-Reason), handler or consumer (Dlq-Handler,
	// Dlq-Original-Consumer), event type and organization id when set.
	Reason, Handler, Type, Organization string
	// Text must occur, ignoring case, in the error, the original subject,
	// the handler, the event id, type or organization, the msg id, or the
	// payload.
	Text string
}

// OnHeaders reports whether the filter looks at more than the subject (so
// the messages it reads must be examined, and a page may end on the scan
// budget).
func (f Filter) OnHeaders() bool {
	return f.Reason != "" || f.Handler != "" || f.Type != "" || f.Organization != "" || f.Text != ""
}

// Match reports whether a dead letter (described, and its payload) passes
// the filter's header and text conditions; Subject is the server's.
func (f Filter) Match(dl DeadLetter, payload []byte) bool {
	switch {
	case f.Reason != "" && dl.Reason != f.Reason,
		f.Handler != "" && dl.Handler != f.Handler && dl.Consumer != f.Handler,
		f.Type != "" && dl.Type != f.Type,
		f.Organization != "" && dl.Organization != f.Organization:
		return false
	case f.Text == "":
		return true
	}
	text := strings.ToLower(f.Text)
	for _, s := range []string{dl.Error, dl.OriginalSubject, dl.Handler, dl.Consumer, dl.EventID, dl.Type, dl.Organization, dl.MsgID, dl.Reason} {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	return bytes.Contains(bytes.ToLower(payload), []byte(text))
}

// Defaults of a PageRequest.
const (
	DefaultPageSize  = 50
	MaxPageSize      = 1000
	DefaultScanLimit = 10_000
)

// PageRequest asks for one page of dead letters.
type PageRequest struct {
	Filter
	// From is the first stream sequence to look at. Default (0): the
	// stream's first.
	From uint64
	// Limit is the page size. Default DefaultPageSize, at most MaxPageSize.
	Limit int
	// ScanLimit bounds the messages examined for one page when the filter
	// looks at headers or text (the server filters subjects only): the page
	// then ends early, Page.ScanLimited says so, and Page.Next continues
	// the search. Default DefaultScanLimit.
	ScanLimit int
}

// Page is one page of dead letters, oldest first.
type Page struct {
	DeadLetters []DeadLetter
	// Next is where the next page starts (PageRequest.From); 0 when the
	// page reached the stream's last sequence as it was when read.
	Next uint64
	// Scanned is how many messages were examined; ScanLimited is true when
	// the scan budget, not the page size, ended the page (Next continues).
	Scanned     int
	ScanLimited bool
	// First and Last are the stream's first and last sequences when the
	// page was read; Total the dead letters on Filter.Subject then (the
	// server's count: header and text conditions are not counted).
	First, Last, Total uint64
}

// List reads one page. Only the page is held in memory: each message is
// read with the message-get API (no consumer, nothing acked), examined,
// and dropped unless it is on the page.
func (q *Queue) List(ctx context.Context, req PageRequest) (Page, error) {
	var p Page
	if err := q.CheckFilter(req.Subject); err != nil {
		return p, err
	}
	limit := cmp.Or(req.Limit, DefaultPageSize)
	if limit < 0 || limit > MaxPageSize {
		return p, fmt.Errorf("dlq: page size %d: want 1 to %d", req.Limit, MaxPageSize)
	}
	budget := cmp.Or(req.ScanLimit, DefaultScanLimit)
	if !req.OnHeaders() {
		budget = limit
	}
	info, err := q.st.Info(ctx)
	if err != nil {
		return p, fmt.Errorf("dlq: reading %s: %w", q.name, err)
	}
	p.First, p.Last = info.State.FirstSeq, info.State.LastSeq
	if p.Total, err = q.Count(ctx, req.Subject); err != nil {
		return p, err
	}
	seq := max(req.From, p.First, 1)
	if req.OnHeaders() && seq <= p.Last {
		// A search examines up to budget messages: stream them through an
		// ephemeral consumer (one request per thousand messages) rather
		// than one message-get request each, unless one cannot be made here
		// (no permission to create consumers): then read them one by one.
		if next, err := q.search(ctx, req, &p, seq, limit, budget); err == nil {
			seq = next
		} else if !errors.Is(err, errNoOrderedConsumer) {
			return p, err
		}
	}
	for seq <= p.Last && len(p.DeadLetters) < limit && p.Scanned < budget {
		raw, err := q.next(ctx, seq, req.Subject)
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			seq = p.Last + 1
			break
		}
		if err != nil {
			return p, err
		}
		if raw.Sequence > p.Last {
			seq = p.Last + 1
			break
		}
		p.Scanned++
		dl := Describe(q.m, raw)
		if req.Match(dl, raw.Data) {
			p.DeadLetters = append(p.DeadLetters, dl)
		}
		seq = raw.Sequence + 1
	}
	if seq <= p.Last {
		p.Next = seq
		p.ScanLimited = len(p.DeadLetters) < limit
	}
	return p, nil
}

// errNoOrderedConsumer: a search could not create its consumer; List
// falls back to the message-get API.
var errNoOrderedConsumer = errors.New("dlq: no ordered consumer")

// searchBatchSize is how many messages one fetch of a search asks for.
const searchBatchSize = 1000

// search reads the dead letters of req from seq (at most to p.Last) with
// an ephemeral consumer (in memory, no acks, deleted after):
// Describes and matches each, appends the matches to p until the page is
// full or budget messages were examined, and returns the sequence to
// continue from.
func (q *Queue) search(ctx context.Context, req PageRequest, p *Page, seq uint64, limit, budget int) (uint64, error) {
	first, err := q.next(ctx, seq, req.Subject)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return p.Last + 1, nil
	}
	if err != nil {
		return 0, err
	}
	if first.Sequence > p.Last {
		return p.Last + 1, nil
	}
	// An ephemeral consumer in memory, without acks, gone 5 s after its
	// last fetch (and deleted at the end). Its creation is bounded: a
	// user without permission to create consumers gets no answer from the
	// server (a permission violation is reported asynchronously), and the
	// page then reads one message at a time instead.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cons, err := q.js.CreateConsumer(cctx, q.name, natsjs.ConsumerConfig{
		FilterSubject: cmp.Or(req.Subject, ">"), AckPolicy: natsjs.AckNonePolicy,
		DeliverPolicy: natsjs.DeliverByStartSequencePolicy, OptStartSeq: first.Sequence,
		InactiveThreshold: 5 * time.Second, MemoryStorage: true, Replicas: 1,
	})
	cancel()
	if err != nil {
		return seq, fmt.Errorf("%w: %w", errNoOrderedConsumer, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = q.js.DeleteConsumer(dctx, q.name, cons.CachedInfo().Name) // best effort: the inactive threshold is the fallback
	}()
	seq = first.Sequence
	for seq <= p.Last && len(p.DeadLetters) < limit && p.Scanned < budget {
		got, end, err := q.searchBatch(ctx, cons, req, p, limit, budget, &seq)
		if err != nil {
			return seq, err
		}
		if got == 0 {
			// The messages are there (the last one said so): a fetch
			// that brings none is a server that does not answer.
			return seq, fmt.Errorf("dlq: searching %s from seq %d: %w", q.name, seq, context.DeadlineExceeded)
		}
		if end {
			if seq <= p.Last && len(p.DeadLetters) < limit && p.Scanned < budget {
				seq = p.Last + 1 // nothing more on the subject up to Last
			}
			break
		}
	}
	return seq, nil
}

// searchBatch fetches one batch of a search and examines it. end reports
// that no message on the subject up to p.Last is left after *seq, or that
// the page is done.
func (q *Queue) searchBatch(ctx context.Context, cons natsjs.Consumer, req PageRequest, p *Page, limit, budget int, seq *uint64) (got int, end bool, err error) {
	// Leaving the batch early (the page is done) cancels its pull request.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	batch, err := cons.Fetch(min(searchBatchSize, budget-p.Scanned), natsjs.FetchContext(fctx))
	if err != nil {
		return 0, false, fmt.Errorf("dlq: searching %s from seq %d: %w", q.name, *seq, err)
	}
	for m := range batch.Messages() {
		got++
		md, err := m.Metadata()
		if err != nil {
			return got, false, fmt.Errorf("dlq: searching %s: %w", q.name, err)
		}
		if md.Sequence.Stream > p.Last || len(p.DeadLetters) >= limit || p.Scanned >= budget {
			end = true // the page ends before this one
			break
		}
		raw := &natsjs.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: md.Timestamp}
		p.Scanned++
		*seq = raw.Sequence + 1
		if dl := Describe(q.m, raw); req.Match(dl, raw.Data) {
			p.DeadLetters = append(p.DeadLetters, dl)
		}
		if md.NumPending == 0 {
			end = true // the last message on the subject: the fetch would
			break      // only wait for more until it expires
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, natsjs.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return got, end, fmt.Errorf("dlq: searching %s from seq %d: %w", q.name, *seq, err)
	}
	return got, end, nil
}

// next is the first message at or after seq on subject ("" for any).
func (q *Queue) next(ctx context.Context, seq uint64, subject string) (*natsjs.RawStreamMsg, error) {
	raw, err := q.st.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(cmp.Or(subject, ">")))
	if err != nil && !errors.Is(err, natsjs.ErrMsgNotFound) {
		return nil, fmt.Errorf("dlq: get message >= %d on %s: %w", seq, cmp.Or(subject, ">"), err)
	}
	return raw, err
}

// Scan calls fn for every dead letter that passes f, in sequence order,
// until fn returns false or an error. It stops at the last sequence the
// stream had when Scan began, so that dead letters arriving meanwhile (a
// replayed event failing again) are not visited in the same pass. Reads
// use the message-get API: no consumer, no ack.
func (q *Queue) Scan(ctx context.Context, f Filter, fn func(raw *natsjs.RawStreamMsg, dl DeadLetter) (bool, error)) error {
	if err := q.CheckFilter(f.Subject); err != nil {
		return err
	}
	info, err := q.st.Info(ctx)
	if err != nil {
		return fmt.Errorf("dlq: reading %s: %w", q.name, err)
	}
	last := info.State.LastSeq
	for seq := max(info.State.FirstSeq, 1); seq <= last; {
		raw, err := q.next(ctx, seq, f.Subject)
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if raw.Sequence > last {
			return nil
		}
		seq = raw.Sequence + 1
		dl := Describe(q.m, raw)
		if !f.Match(dl, raw.Data) {
			continue
		}
		more, err := fn(raw, dl)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Count is the number of dead letters on subject ("" for all), as the
// server counts them.
func (q *Queue) Count(ctx context.Context, subject string) (uint64, error) {
	if subject == "" {
		info, err := q.st.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("dlq: counting the dead letters of %s: %w", q.name, err)
		}
		return info.State.Msgs, nil
	}
	by, err := q.CountBySubject(ctx, subject)
	var n uint64
	for _, c := range by {
		n += c
	}
	return n, err
}

// CountBySubject is the number of dead letters on each subject matching
// subject ("" for all).
func (q *Queue) CountBySubject(ctx context.Context, subject string) (map[string]uint64, error) {
	info, err := q.st.Info(ctx, natsjs.WithSubjectFilter(cmp.Or(subject, ">")))
	if err != nil {
		return nil, fmt.Errorf("dlq: counting the dead letters of %s: %w", q.name, err)
	}
	return info.State.Subjects, nil
}
