package router

import (
	"context"
	"slices"
	"time"

	"github.com/jetevents/events/transport"
)

// GroupHealth is the state of one group, for a readiness probe.
type GroupHealth struct {
	// Group is the durable name.
	Group string
	// State is active (pulling), stalled (its pulls went unanswered and it
	// is recovering by itself) or ended (it could not be recovered: Run is
	// returning). Before Run, and after it returned, no group is reported.
	State transport.State
	// Cause is why it stalled or ended (nil when active).
	Cause error
	// Stalls counts the stalls detected since Run started (one still being
	// recovered from included).
	Stalls uint64
	// LastProgress is when a message of the group was last settled (or
	// when the group started).
	LastProgress time.Time
	// Held is how many messages the group holds: queued and in handlers.
	Held int
	// Pending, AckPending and Redelivered are the durable's counts as the
	// broker reports them; InfoErr is set when it could not be asked.
	Pending     uint64
	AckPending  int
	Redelivered int
	InfoErr     error
	// PausedUntil is when the group's durable, paused (Router.Pause, or
	// by anyone: jetevents consumers pause, the console), resumes by
	// itself; zero when it is not paused (or InfoErr is set). A paused
	// group stays active and counts as ready: it waits on purpose, and its
	// pulls are answered with heartbeats.
	PausedUntil time.Time
}

// Health is the router's state: Ready when Run bound every group and none
// is stalled or ended (a paused group is ready).
type Health struct {
	Ready  bool
	Groups []GroupHealth
	// Partitioned are the partitioned groups (their partitions running
	// here are in Groups, one entry per durable).
	Partitioned []PartitionedHealth
}

// Health reports each group's state, reading the durables' counts from the
// broker (bounded by ctx). It is safe to call at any time, from any
// goroutine: a readiness probe calls it.
func (r *Router) Health(ctx context.Context) Health {
	r.mu.Lock()
	runs := slices.Clone(r.runs)
	parts := r.parts
	r.mu.Unlock()
	h := Health{Ready: len(runs)+len(parts) > 0}
	for _, pr := range parts {
		ph, units := pr.health()
		h.Partitioned = append(h.Partitioned, ph)
		runs = append(runs, units...)
		if ph.BeatErr != nil || ph.StartErr != nil {
			h.Ready = false
		}
	}
	for _, gr := range runs {
		ph := gr.run.Health()
		gh := GroupHealth{
			Group:        gr.spec.Durable,
			State:        ph.State,
			Cause:        ph.Cause,
			Stalls:       ph.Stalls,
			LastProgress: ph.LastProgress,
			Held:         ph.Held,
		}
		if st, err := gr.run.ConsumerState(ctx); err != nil {
			gh.InfoErr = err
		} else {
			gh.Pending, gh.AckPending, gh.Redelivered = st.Pending, st.AckPending, st.Redelivered
			gh.PausedUntil = st.PausedUntil
		}
		if gh.State != transport.StateActive {
			h.Ready = false
		}
		h.Groups = append(h.Groups, gh)
	}
	return h
}
