package dlq

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

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
