package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// Pause stops deliveries to the group's durable (group is its Durable, as
// given to Group or AddGroup; a partitioned group's partitions too) until
// until, for every process bound to it,
// with the broker's consumer pause: JetStream's (nats-server 2.11 or later)
// on New's transport, the memory bus's on its clock (transport.Pauser).
// Delivery resumes by itself at until; nobody has to call Resume, and the
// pause outlives this process (a restart, or a changed group config applied
// at Run, leaves it paused).
//
// While paused the group stays active and Ready in Health (its pulls are
// answered with heartbeats: a pause is never read as a stall, and never makes
// the group recreate its durable), and GroupHealth.PausedUntil says until
// when. Messages the group held when it was paused are still handled and
// settled; a failed one is redelivered after the pause.
//
// It may be called before Run (the durable must exist then: a group's
// durable is created by the first Run), while it runs, and after. Errors:
// ErrUnknownGroup for a name that is not one of the router's groups;
// envelope.ErrInvalidConfig when until is not in the future;
// transport.ErrUnsupported when the transport cannot pause (a nats-server
// older than 2.11, a transport without transport.Pauser);
// transport.ErrNoConsumer when the durable does not exist yet; the
// transport's errors otherwise (transport.ErrTimeout, ErrPermission, ...).
func (r *Router) Pause(ctx context.Context, group string, until time.Time) error {
	p, durables, err := r.pauser("pause", group)
	if err != nil {
		return err
	}
	var errs []error
	for _, durable := range durables {
		if err := p.Pause(ctx, r.cfg.Stream, durable, until); err != nil {
			errs = append(errs, fmt.Errorf("router: pause group %s (durable %s): %w", group, durable, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.cfg.Logger.Info("Group paused: nothing is delivered to it until then, when it resumes by itself", watermill.LogFields{
		"group": group, "stream": r.cfg.Stream, "until": until.UTC().Format(time.RFC3339Nano),
	})
	return nil
}

// Resume delivers to the group's durable again at once, for every process
// bound to it. Resuming a group that is not paused is a success. Errors as
// Pause's.
func (r *Router) Resume(ctx context.Context, group string) error {
	p, durables, err := r.pauser("resume", group)
	if err != nil {
		return err
	}
	var errs []error
	for _, durable := range durables {
		if err := p.Resume(ctx, r.cfg.Stream, durable); err != nil {
			errs = append(errs, fmt.Errorf("router: resume group %s (durable %s): %w", group, durable, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.cfg.Logger.Info("Group resumed", watermill.LogFields{"group": group, "stream": r.cfg.Stream})
	return nil
}

// pauser returns the transport's Pauser and the durables of the group
// named group: its own, and each partition's when it is partitioned.
func (r *Router) pauser(op, group string) (transport.Pauser, []string, error) {
	r.mu.Lock()
	var names []string
	var found *Group
	for _, g := range r.groups {
		names = append(names, g.cfg.Durable)
		if g.cfg.Durable == group && found == nil {
			found = g
		}
	}
	r.mu.Unlock()
	if found == nil {
		slices.Sort(names)
		have := "none"
		if len(names) > 0 {
			have = strings.Join(names, ", ")
		}
		return nil, nil, fmt.Errorf("%w: %s %q on stream %s (the router's groups: %s)", ErrUnknownGroup, op, group, r.cfg.Stream, have)
	}
	if err := found.Err(); err != nil {
		return nil, nil, fmt.Errorf("router: %s group %s: %w", op, group, err)
	}
	p, ok := r.tr.(transport.Pauser)
	if !ok {
		return nil, nil, &transport.Error{Op: op + " group " + group, Stream: r.cfg.Stream, Kinds: []error{transport.ErrUnsupported},
			Hint: fmt.Sprintf("the router's transport (%T) cannot pause a durable", r.tr)}
	}
	durables := []string{found.cfg.Durable}
	if found.cfg.partitioned() {
		for u := range found.cfg.Partitions.Count {
			durables = append(durables, partition.Durable(found.cfg.Durable, u, found.cfg.Partitions.Count))
		}
	}
	return p, durables, nil
}

// StreamPauser is the router as a pauser of groups by stream and durable
// name: the method set of console.Pauser, so that a service hands its
// router to its console (console.Config{Pauser: r.StreamPauser()}) and the
// console's pause and resume buttons go through Router.Pause and Resume.
// A group on another stream, or not one of the router's, is refused with
// ErrUnknownGroup.
type StreamPauser struct{ r *Router }

// StreamPauser returns the router as a StreamPauser.
func (r *Router) StreamPauser() StreamPauser { return StreamPauser{r} }

// Pause is Router.Pause of group on stream.
func (p StreamPauser) Pause(ctx context.Context, stream, group string, until time.Time) error {
	if err := p.check("pause", stream, group); err != nil {
		return err
	}
	return p.r.Pause(ctx, group, until)
}

// Resume is Router.Resume of group on stream.
func (p StreamPauser) Resume(ctx context.Context, stream, group string) error {
	if err := p.check("resume", stream, group); err != nil {
		return err
	}
	return p.r.Resume(ctx, group)
}

func (p StreamPauser) check(op, stream, group string) error {
	if stream != p.r.cfg.Stream {
		return fmt.Errorf("%w: %s %s/%s: this router consumes stream %s", ErrUnknownGroup, op, stream, group, p.r.cfg.Stream)
	}
	return nil
}
