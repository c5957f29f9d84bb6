package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ConsumerLastActive is when the consumer last delivered or had a message
// acked (zero: never), from its info.
func ConsumerLastActive(ci *natsjs.ConsumerInfo) time.Time {
	var last time.Time
	for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	return last
}

// ConsumerStalled reports whether a consumer looks stalled from the
// outside (its info): messages wait for it (pending, or delivered and not
// acked), nothing pulls (no waiting pull request, no bound push
// subscriber), nothing was delivered or acked for stalledAfter, and it is
// not paused. A healthy busy service has pull requests waiting or has just
// been active; a paused consumer waits on purpose. What `jetevents
// consumers` and the console call stalled.
func ConsumerStalled(ci *natsjs.ConsumerInfo, now time.Time, stalledAfter time.Duration) bool {
	if ci.Paused || ci.NumPending == 0 && ci.NumAckPending == 0 {
		return false
	}
	if ci.NumWaiting > 0 || ci.PushBound {
		return false
	}
	last := ConsumerLastActive(ci)
	return last.IsZero() || now.Sub(last) >= stalledAfter
}
