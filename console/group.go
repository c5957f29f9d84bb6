package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/router"
)

// DefaultPause is how long the group page's pause button pauses a group
// when no duration is given.
const DefaultPause = time.Hour

// setting is one row of a durable's configuration.
type setting struct{ Name, Value string }

type groupData struct {
	groupRow
	Settings   []setting
	Created    time.Time
	Delivered  natsjs.SequenceInfo
	AckFloor   natsjs.SequenceInfo
	PauseUntil time.Time
	// Partitions, from Config.Partitions: nil without a source.
	Partitions    *GroupPartitions
	PartitionsErr string
	DeadLetters   string // the dead-letters page filtered on this group
	Local         *router.GroupHealth
}

func (h *Handler) group(w http.ResponseWriter, r *http.Request) {
	stream, name := r.PathValue("stream"), r.PathValue("group")
	ctx, cancel := h.ctx(r)
	defer cancel()
	c, err := h.cfg.JetStream.Consumer(ctx, stream, name)
	if errors.Is(err, natsjs.ErrConsumerNotFound) || errors.Is(err, natsjs.ErrStreamNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("stream %s has no durable %s", stream, name))
		return
	}
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	ci := c.CachedInfo()
	var local *router.GroupHealth
	if h.cfg.Health != nil {
		for _, g := range h.cfg.Health(ctx).Groups {
			if g.Group == name {
				local = &g
				break
			}
		}
	}
	now := time.Now()
	d := groupData{groupRow: h.groupRow(ci, local, now), Created: ci.Created, Delivered: ci.Delivered, AckFloor: ci.AckFloor, Local: local,
		DeadLetters: "deadletters?" + url.Values{"handler": {name}}.Encode()}
	if ci.Config.PauseUntil != nil && ci.Paused {
		d.PauseUntil = *ci.Config.PauseUntil
	}
	cfg := ci.Config
	d.Settings = []setting{
		{"filter", filterText(cfg)},
		{"deliver policy", strings.ToLower(strings.TrimPrefix(cfg.DeliverPolicy.String(), "Deliver"))},
		{"ack policy", strings.ToLower(strings.TrimPrefix(cfg.AckPolicy.String(), "Ack"))},
		{"ack wait", cfg.AckWait.String()},
		{"max deliver (server)", maxDeliverText(cfg.MaxDeliver)},
		{"max ack pending", numText(cfg.MaxAckPending)},
		{"max waiting pulls", numText(cfg.MaxWaiting)},
	}
	if len(cfg.BackOff) > 0 {
		d.Settings = append(d.Settings, setting{"backoff", fmt.Sprint(cfg.BackOff)})
	}
	if cfg.Description != "" {
		d.Settings = append([]setting{{"description", cfg.Description}}, d.Settings...)
	}
	if h.cfg.Partitions != nil {
		p, err := h.cfg.Partitions.Partitions(ctx, stream, name)
		if err != nil {
			d.PartitionsErr = err.Error()
		}
		d.Partitions = &p
	}
	h.render(w, r, http.StatusOK, "group", stream+"/"+name, "overview", d)
}

func maxDeliverText(n int) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// pause pauses a group for the form's "for" duration (DefaultPause when
// empty; 90s, 15m, 2h, 1d).
func (h *Handler) pause(w http.ResponseWriter, r *http.Request) {
	stream, name := r.PathValue("stream"), r.PathValue("group")
	d := DefaultPause
	if s := strings.TrimSpace(r.PostFormValue("for")); s != "" {
		var err error
		if d, err = jetstream.ParseDuration(s); err != nil || d <= 0 {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("pause for %q: want a positive duration such as 15m, 2h or 1d", s))
			return
		}
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	until := time.Now().Add(d)
	err := h.cfg.Pauser.Pause(ctx, stream, name, until)
	h.audit(r, "pause", err, "stream", stream, "group", name, "until", until.UTC().Format(time.RFC3339))
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	h.redirect(w, r, groupPath(stream, name), fmt.Sprintf("Paused %s/%s until %s", stream, name, utcText(until)))
}

func (h *Handler) resume(w http.ResponseWriter, r *http.Request) {
	stream, name := r.PathValue("stream"), r.PathValue("group")
	ctx, cancel := h.ctx(r)
	defer cancel()
	err := h.cfg.Pauser.Resume(ctx, stream, name)
	h.audit(r, "resume", err, "stream", stream, "group", name)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	h.redirect(w, r, groupPath(stream, name), fmt.Sprintf("Resumed %s/%s", stream, name))
}

func groupPath(stream, name string) string {
	return "groups/" + url.PathEscape(stream) + "/" + url.PathEscape(name)
}
