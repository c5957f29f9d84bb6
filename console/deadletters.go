package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/dlq"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
)

// reasons are the dead-letter reasons the filter offers.
var reasons = []string{middleware.ReasonMaxDeliver, middleware.ReasonPermanent, middleware.ReasonUnmarshal,
	middleware.ReasonSchemaVersion, middleware.ReasonUnknownType, middleware.ReasonHandlerError}

// filterOf reads a dead-letter filter from a query or form: its fields
// subject, reason, handler, type, org and q.
func filterOf(v url.Values) dlq.Filter {
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return dlq.Filter{Subject: get("subject"), Reason: get("reason"), Handler: get("handler"),
		Type: get("type"), Organization: get("org"), Text: get("q")}
}

// filterQuery is f as query fields (empty ones left out).
func filterQuery(f dlq.Filter) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"subject": f.Subject, "reason": f.Reason, "handler": f.Handler, "type": f.Type, "org": f.Organization, "q": f.Text} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// describeFilter describes f for people: `subject dlq.auth.>, reason permanent`.
func describeFilter(f dlq.Filter) string {
	var parts []string
	for _, p := range [][2]string{{"subject", f.Subject}, {"reason", f.Reason}, {"handler", f.Handler}, {"type", f.Type}, {"organization", f.Organization}, {"text", f.Text}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+strconv.Quote(p[1]))
		}
	}
	if len(parts) == 0 {
		return "every dead letter"
	}
	return "dead letters with " + strings.Join(parts, ", ")
}

// hidden is a hidden form field.
type hidden struct{ Name, Value string }

func hiddenOf(v url.Values) []hidden {
	var out []hidden
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, s := range v[k] {
			out = append(out, hidden{k, s})
		}
	}
	return out
}

type dlqListData struct {
	Stream    string
	Filter    dlq.Filter
	Query     string // the filter as a query string
	Hidden    []hidden
	Page      dlq.Page
	From      uint64
	NextURL   string
	Reasons   []string
	Searching bool
	Missing   bool
	Err       string
}

func (h *Handler) queue(r *http.Request) (*dlq.Queue, error) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	return dlq.Open(ctx, h.cfg.JetStream, h.cfg.DeadLetterStream)
}

func (h *Handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r.URL.Query())
	d := dlqListData{Stream: h.cfg.DeadLetterStream, Filter: f, Reasons: reasons, Searching: f.OnHeaders()}
	fq := filterQuery(f)
	d.Query, d.Hidden = fq.Encode(), hiddenOf(fq)
	if s := r.URL.Query().Get("from"); s != "" {
		from, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("from %q is not a sequence number", s))
			return
		}
		d.From = from
	}
	q, err := h.queue(r)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		d.Missing = true
		h.render(w, r, http.StatusOK, "deadletters", "Dead letters", "deadletters", d)
		return
	}
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	d.Page, err = q.List(ctx, dlq.PageRequest{Filter: f, From: d.From, Limit: h.cfg.PageSize, ScanLimit: h.cfg.ScanLimit})
	switch {
	case errors.Is(err, dlq.ErrInvalidFilter), errors.Is(err, dlq.ErrFilterOutsideStream):
		d.Err = err.Error()
	case err != nil:
		h.fail(w, r, statusOf(err), err)
		return
	}
	if d.Page.Next != 0 {
		next := filterQuery(f)
		next.Set("from", strconv.FormatUint(d.Page.Next, 10))
		d.NextURL = "deadletters?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "deadletters", "Dead letters", "deadletters", d)
}

type headerRow struct {
	Name, Value string
	Redacted    bool
}

type dlqShowData struct {
	Stream    string
	DL        dlq.DeadLetter
	Headers   []headerRow
	Event     string
	Payload   string
	Truncated bool
	Filter    string // the handler filter link
}

// maxPayloadShown bounds the payload text of a dead letter that is no
// event.
const maxPayloadShown = 64 << 10

func (h *Handler) deadLetter(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a sequence number", r.PathValue("seq")))
		return
	}
	q, err := h.queue(r)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	dl, raw, err := q.Show(ctx, seq)
	if errors.Is(err, dlq.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("%s has no dead letter with sequence %d (replayed and purged ones are gone)", q.Name(), seq))
		return
	}
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	d := dlqShowData{Stream: q.Name(), DL: dl}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range raw.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range raw.Header[k] {
			row := headerRow{Name: k, Value: v}
			if redactHeader(k) {
				row.Value, row.Redacted = Redacted, true
			}
			d.Headers = append(d.Headers, row)
		}
	}
	d.DL.Headers = nil
	if dl.Event != nil {
		var pretty bytes.Buffer
		if json.Indent(&pretty, dl.Event, "", "  ") == nil {
			d.Event = pretty.String()
		}
	} else {
		p := raw.Data
		if len(p) > maxPayloadShown {
			p, d.Truncated = p[:maxPayloadShown], true
		}
		d.Payload = strings.ToValidUTF8(string(p), string(utf8.RuneError))
	}
	h.render(w, r, http.StatusOK, "deadletter", fmt.Sprintf("Dead letter %d", seq), "deadletters", d)
}

// confirmData is a confirmation page: the write it confirms, posted again
// with confirm=yes.
type confirmData struct {
	Action   string
	Question string
	Details  []string
	Button   string
	Fields   []hidden
	Cancel   string
}

// parseWhen reads a replay's time: "" is now, a duration (90s, 15m, 2h,
// 1d) from now, or an RFC 3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return time.Time{}, nil
	}
	if d, err := jetstream.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("when %q: want now, a duration (30m, 2h, 1d) or an RFC 3339 time (2024-01-15T09:00:00Z)", s)
	}
	return t, nil
}

func whenText(at time.Time) string {
	if at.IsZero() {
		return "now"
	}
	return "at " + utcText(at)
}

// replay replays one dead letter (field one), the selected ones (sel), or
// every one matching the filter (all=1, after a confirmation page), now or
// at the time in "when".
func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f := filterOf(r.PostForm)
	fq := filterQuery(f)
	back := "deadletters?" + fq.Encode()
	at, err := parseWhen(r.PostFormValue("when"), time.Now())
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	var seqs []uint64
	for _, s := range append(r.PostForm["one"], r.PostForm["sel"]...) {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seq == 0 {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a sequence number", s))
			return
		}
		seqs = append(seqs, seq)
	}
	if one := r.PostFormValue("one"); one != "" {
		seqs = seqs[:1] // the row's own button: that dead letter only
	}
	all := r.PostFormValue("all") == "1"
	if !all && len(seqs) == 0 {
		h.redirect(w, r, back, "Nothing replayed: select dead letters first")
		return
	}
	q, err := h.queue(r)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if all && r.PostFormValue("confirm") != "yes" {
		fields := url.Values{"all": {"1"}, "confirm": {"yes"}, "when": {r.PostFormValue("when")}}
		for k, v := range fq {
			fields[k] = v
		}
		details := []string{fmt.Sprintf("Replayed %s to their original subjects, then deleted from %s.", whenText(at), q.Name())}
		if n, err := q.Count(ctx, f.Subject); err == nil {
			details = append(details, fmt.Sprintf("%s holds %s dead letters on %s.", q.Name(), numText(n), cmpOr(f.Subject, "any subject")))
		}
		if f.OnHeaders() {
			details = append(details, "The conditions on reason, handler, type, organization and text are checked one dead letter at a time.")
		}
		details = append(details, fmt.Sprintf("At most %s are replayed per click; run it again for the rest.", numText(h.cfg.MaxBatch)))
		h.render(w, r, http.StatusOK, "confirm", "Replay dead letters", "deadletters", confirmData{
			Action: "deadletters/replay", Question: "Replay " + describeFilter(f) + "?", Details: details,
			Button: "Replay " + whenText(at), Fields: hiddenOf(fields), Cancel: back})
		return
	}
	opts := dlq.ReplayOptions{At: at}
	var done []dlq.Replayed
	var failed []string
	// Each replay is bounded by RequestTimeout; the whole of a batch only by
	// the request (up to MaxBatch dead letters).
	replay := func(raw *natsjs.RawStreamMsg) {
		ctx, cancel := h.ctx(r)
		defer cancel()
		res, err := q.Replay(ctx, raw, opts)
		if err != nil {
			failed = append(failed, fmt.Sprintf("seq %d: %v", raw.Sequence, err))
			return
		}
		done = append(done, res)
	}
	if all {
		err = q.Scan(r.Context(), f, func(raw *natsjs.RawStreamMsg, _ dlq.DeadLetter) (bool, error) {
			replay(raw)
			return len(done)+len(failed) < h.cfg.MaxBatch && len(failed) < 10, nil
		})
		if err != nil {
			failed = append(failed, err.Error())
		}
	} else {
		for _, seq := range seqs {
			raw, err := q.Get(ctx, seq)
			if err != nil {
				failed = append(failed, fmt.Sprintf("seq %d: %v", seq, err))
				continue
			}
			replay(raw)
		}
	}
	var replayed []string
	for _, d := range done {
		replayed = append(replayed, strconv.FormatUint(d.Seq, 10))
	}
	var auditErr error
	if len(failed) > 0 {
		auditErr = errors.New(strings.Join(failed, "; "))
	}
	h.audit(r, "replay", auditErr, "stream", q.Name(), "filter", describeFilter(f), "all", all, "when", whenText(at), "replayed", strings.Join(replayed, ","))
	msg := fmt.Sprintf("Replayed %s %s", plural(len(done), "dead letter", "dead letters"), whenText(at))
	if len(done) == 1 {
		d := done[0]
		msg += fmt.Sprintf(": %s seq %d -> %s (stream %s seq %d)", q.Name(), d.Seq, d.Target, d.Ack.Stream, d.Ack.Sequence)
	}
	if len(failed) > 0 {
		msg += fmt.Sprintf("; %d failed and were kept: %s", len(failed), strings.Join(failed, "; "))
	}
	h.redirect(w, r, back, msg)
}

// purge removes the dead letters matching the filter, after a
// confirmation page.
func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f := filterOf(r.PostForm)
	fq := filterQuery(f)
	back := "deadletters?" + fq.Encode()
	q, err := h.queue(r)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := q.CheckFilter(f.Subject); err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		fields := url.Values{"confirm": {"yes"}}
		for k, v := range fq {
			fields[k] = v
		}
		var details []string
		if n, err := q.Count(ctx, f.Subject); err == nil {
			details = append(details, fmt.Sprintf("%s holds %s dead letters on %s.", q.Name(), numText(n), cmpOr(f.Subject, "any subject")))
		}
		if f.OnHeaders() {
			details = append(details, fmt.Sprintf("Only those that match the other conditions are removed, one at a time, at most %s per click.", numText(h.cfg.MaxBatch)))
		}
		details = append(details, "Purged dead letters are gone: they cannot be replayed.")
		h.render(w, r, http.StatusOK, "confirm", "Purge dead letters", "deadletters", confirmData{
			Action: "deadletters/purge", Question: "Purge " + describeFilter(f) + "?", Details: details,
			Button: "Purge", Fields: hiddenOf(fields), Cancel: back})
		return
	}
	var purged uint64
	if !f.OnHeaders() {
		purged, err = q.Purge(ctx, f.Subject)
	} else {
		err = q.Scan(r.Context(), f, func(raw *natsjs.RawStreamMsg, _ dlq.DeadLetter) (bool, error) {
			ctx, cancel := h.ctx(r)
			defer cancel()
			if err := q.Delete(ctx, raw.Sequence); err != nil && !errors.Is(err, dlq.ErrNotFound) {
				return false, err
			}
			purged++
			return purged < uint64(h.cfg.MaxBatch), nil
		})
	}
	h.audit(r, "purge", err, "stream", q.Name(), "filter", describeFilter(f), "purged", purged)
	if err != nil {
		h.fail(w, r, statusOf(err), fmt.Errorf("purge of %s stopped after %d: %w", q.Name(), purged, err))
		return
	}
	h.redirect(w, r, back, fmt.Sprintf("Purged %s from %s", plural(int(purged), "dead letter", "dead letters"), q.Name()))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return numText(n) + " " + many
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
