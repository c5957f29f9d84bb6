package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

type schedulesData struct {
	Streams []string // the streams that allow schedules
	Stream  string   // the one shown
	Page    jetstream.SchedulePage
	From    uint64
	NextURL string
}

func (h *Handler) schedules(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	var d schedulesData
	lister := h.cfg.JetStream.ListStreams(ctx)
	for si := range lister.Info() {
		if si.Config.AllowMsgSchedules {
			d.Streams = append(d.Streams, si.Config.Name)
		}
	}
	if err := lister.Err(); err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	slices.Sort(d.Streams)
	d.Stream = r.URL.Query().Get("stream")
	if d.Stream == "" && len(d.Streams) > 0 {
		d.Stream = d.Streams[0]
	}
	if d.Stream != "" && !slices.Contains(d.Streams, d.Stream) {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("stream %s does not exist or does not allow schedules", d.Stream))
		return
	}
	if s := r.URL.Query().Get("from"); s != "" {
		from, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("from %q is not a sequence number", s))
			return
		}
		d.From = from
	}
	if d.Stream != "" {
		var err error
		if d.Page, err = jetstream.ListSchedules(ctx, h.cfg.JetStream, d.Stream, d.From, h.cfg.PageSize); err != nil {
			h.fail(w, r, statusOf(err), err)
			return
		}
		if d.Page.Next != 0 {
			d.NextURL = "schedules?" + url.Values{"stream": {d.Stream}, "from": {strconv.FormatUint(d.Page.Next, 10)}}.Encode()
		}
	}
	h.render(w, r, http.StatusOK, "schedules", "Scheduled events", "schedules", d)
}

// cancelSchedule removes the schedule at the form's stream and seq.
func (h *Handler) cancelSchedule(w http.ResponseWriter, r *http.Request) {
	stream := r.PostFormValue("stream")
	seq, err := strconv.ParseUint(r.PostFormValue("seq"), 10, 64)
	if err != nil || seq == 0 || stream == "" {
		h.fail(w, r, http.StatusBadRequest, errors.New("cancel needs the schedule's stream and seq"))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	err = jetstream.CancelScheduleAt(ctx, h.cfg.JetStream, stream, seq)
	h.audit(r, "cancel schedule", err, "stream", stream, "seq", seq)
	back := "schedules?" + url.Values{"stream": {stream}}.Encode()
	switch {
	case errors.Is(err, transport.ErrScheduleNotFound), errors.Is(err, natsjs.ErrStreamNotFound):
		h.redirect(w, r, back, fmt.Sprintf("Nothing cancelled: %v", err))
	case err != nil:
		h.fail(w, r, statusOf(err), err)
	default:
		h.redirect(w, r, back, fmt.Sprintf("Cancelled the schedule %s seq %d: it will not fire", stream, seq))
	}
}
