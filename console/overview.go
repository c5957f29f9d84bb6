package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// Group states the pages show.
const (
	StateActive  = "active"  // pulling, or recently active
	StateIdle    = "idle"    // nothing waits for it
	StateStalled = "stalled" // events wait and nothing pulls (or the local router says so)
	StatePaused  = "paused"  // paused on purpose
)

// streamRow is a stream on the overview.
type streamRow struct {
	Name, Subjects   string
	Msgs, Bytes      uint64
	FirstSeq         uint64
	LastSeq          uint64
	Consumers        int
	Schedules        bool
	DeadLetterStream bool
}

// groupRow is a durable consumer: a group of a router (or any durable).
type groupRow struct {
	Stream, Name, Filter string
	Pending              uint64
	AckPending           int
	Redelivered          int
	Waiting              int
	LastActive           time.Time
	State                string
	Paused               bool
	PauseRemaining       time.Duration
	Rate                 string // deliveries per second, "-" until sampled twice
	// Local is the local router's view of this group, when Config.Health
	// is set and the router runs it.
	Local *router.GroupHealth
	info  *natsjs.ConsumerInfo
}

// outboxRow is an outbox table's backlog.
type outboxRow struct {
	Table   string
	Pending int64
	Oldest  time.Duration
	Err     string
}

type overviewData struct {
	Streams     []streamRow
	Groups      []groupRow
	DeadLetters uint64
	DLQStream   string
	DLQMissing  bool
	Schedules   uint64
	Outbox      []outboxRow
	// Local is the local router's readiness when Config.Health is set.
	Local  *router.Health
	Errors []string
	At     time.Time
}

// collect reads what the overview and api/live show: streams, durables,
// the dead-letter count, pending schedules, the local router's health,
// the outbox backlogs.
func (h *Handler) collect(ctx context.Context) (overviewData, error) {
	d := overviewData{DLQStream: h.cfg.DeadLetterStream, At: time.Now()}
	js := h.cfg.JetStream
	var local map[string]*router.GroupHealth
	if h.cfg.Health != nil {
		hl := h.cfg.Health(ctx)
		d.Local = &hl
		local = map[string]*router.GroupHealth{}
		for i := range hl.Groups {
			local[hl.Groups[i].Group] = &hl.Groups[i]
		}
	}
	lister := js.ListStreams(ctx)
	var infos []*natsjs.StreamInfo
	for si := range lister.Info() {
		infos = append(infos, si)
	}
	if err := lister.Err(); err != nil {
		return d, fmt.Errorf("listing streams: %w", err)
	}
	slices.SortFunc(infos, func(a, b *natsjs.StreamInfo) int { return cmp.Compare(a.Config.Name, b.Config.Name) })
	d.DLQMissing = true
	for _, si := range infos {
		row := streamRow{Name: si.Config.Name, Subjects: strings.Join(si.Config.Subjects, ", "), Msgs: si.State.Msgs, Bytes: si.State.Bytes,
			FirstSeq: si.State.FirstSeq, LastSeq: si.State.LastSeq, Consumers: si.State.Consumers,
			Schedules: si.Config.AllowMsgSchedules, DeadLetterStream: si.Config.Name == h.cfg.DeadLetterStream}
		if row.DeadLetterStream {
			d.DeadLetters, d.DLQMissing = si.State.Msgs, false
		}
		d.Streams = append(d.Streams, row)
		if row.Schedules {
			n, err := countSchedules(ctx, js, si.Config.Name)
			if err != nil {
				d.Errors = append(d.Errors, fmt.Sprintf("counting the schedules of %s: %v", si.Config.Name, err))
			}
			d.Schedules += n
		}
		if si.State.Consumers == 0 {
			continue
		}
		st, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("stream %s: %v", si.Config.Name, err))
			continue
		}
		cl := st.ListConsumers(ctx)
		for ci := range cl.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: a tail, a watcher; not a group
			}
			d.Groups = append(d.Groups, h.groupRow(ci, local[ci.Name], d.At))
		}
		if err := cl.Err(); err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("consumers of %s: %v", si.Config.Name, err))
		}
	}
	slices.SortFunc(d.Groups, func(a, b groupRow) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Name, b.Name))
	})
	for _, ob := range h.cfg.Outbox {
		table, pending, oldest, err := ob(ctx)
		row := outboxRow{Table: table, Pending: pending, Oldest: oldest}
		if err != nil {
			row.Err = err.Error()
		}
		d.Outbox = append(d.Outbox, row)
	}
	return d, nil
}

// countSchedules counts the pending schedules of a stream (messages on
// its schedule subjects).
func countSchedules(ctx context.Context, js natsjs.JetStream, stream string) (uint64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx, natsjs.WithSubjectFilter(transport.SchedulePrefix+".>"))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

func (h *Handler) groupRow(ci *natsjs.ConsumerInfo, local *router.GroupHealth, now time.Time) groupRow {
	g := groupRow{Stream: ci.Stream, Name: ci.Name, Filter: filterText(ci.Config),
		Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting,
		LastActive: jetstream.ConsumerLastActive(ci), Paused: ci.Paused, PauseRemaining: ci.PauseRemaining, Local: local, info: ci}
	switch {
	case ci.Paused:
		g.State = StatePaused
	case local != nil && local.State != transport.StateActive:
		g.State = string(local.State)
	case jetstream.ConsumerStalled(ci, now, h.cfg.StalledAfter):
		g.State = StateStalled
	case ci.NumPending == 0 && ci.NumAckPending == 0:
		g.State = StateIdle
	default:
		g.State = StateActive
	}
	g.Rate = "-"
	if r, ok := h.rates.rate(ci.Stream+"/"+ci.Name, ci.Delivered.Consumer, now); ok {
		g.Rate = fmt.Sprintf("%.1f/s", r)
	}
	return g
}

func filterText(c natsjs.ConsumerConfig) string {
	f := c.FilterSubjects
	if c.FilterSubject != "" {
		f = append([]string{c.FilterSubject}, f...)
	}
	if len(f) == 0 {
		return "(all)"
	}
	return strings.Join(f, ", ")
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	d, err := h.collect(ctx)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	h.render(w, r, http.StatusOK, "overview", "Overview", "overview", d)
}

// live answers api/live: every live number of every page, by the key the
// pages mark their elements with (data-live), as display text, and the
// group states (data-live-state). The pages' script fetches it every
// Config.Refresh.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	d, err := h.collect(ctx)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, liveValues(d))
}

// Live is the body of api/live.
type Live struct {
	At     time.Time         `json:"at"`
	Values map[string]string `json:"values"`
}

func liveValues(d overviewData) Live {
	v := map[string]string{}
	for _, s := range d.Streams {
		v["stream/"+s.Name+"/msgs"] = numText(s.Msgs)
		v["stream/"+s.Name+"/bytes"] = bytesText(s.Bytes)
		v["stream/"+s.Name+"/consumers"] = numText(s.Consumers)
	}
	for _, g := range d.Groups {
		k := "group/" + g.Stream + "/" + g.Name + "/"
		v[k+"pending"] = numText(g.Pending)
		v[k+"ackpending"] = numText(g.AckPending)
		v[k+"redelivered"] = numText(g.Redelivered)
		v[k+"waiting"] = numText(g.Waiting)
		v[k+"state"] = g.State
		v[k+"rate"] = g.Rate
		v[k+"lastactive"] = agoText(g.LastActive, d.At)
		v[k+"pause"] = pauseText(g)
	}
	v["dlq/total"] = numText(d.DeadLetters)
	v["schedules/total"] = numText(d.Schedules)
	for _, o := range d.Outbox {
		v["outbox/"+o.Table+"/pending"] = numText(o.Pending)
		v["outbox/"+o.Table+"/oldest"] = durText(o.Oldest)
	}
	if d.Local != nil {
		v["local/ready"] = readyText(d.Local.Ready)
	}
	return Live{At: d.At, Values: v}
}

func pauseText(g groupRow) string {
	if !g.Paused {
		return "no"
	}
	return "for " + durText(g.PauseRemaining)
}

func readyText(ready bool) string {
	if ready {
		return "ready"
	}
	return "not ready"
}
