package jetstream

import "time"

// The watchdog dates back the deliveries read after the process was frozen.

// watchEvery is the watchdog's period.
const watchEvery = 50 * time.Millisecond

// watch records, every watchEvery until Stop, that the process runs. A
// process frozen (SIGSTOP, a VM paused, a suspended laptop) stops it; the
// server meanwhile keeps delivering to the pull requests it holds for the
// consumer, redelivering what the frozen process held once AckWait passed,
// and those deliveries wait in the socket. Read on waking, they look fresh
// but their leases may be long gone (delivered again to another process).
// received dates them back to the last time the watchdog ran.
func (c *pullConsumer) watch() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stopCh:
			return
		case now := <-t.C:
			now = time.Now()
			if prev := c.alive.Load(); prev != nil && now.Sub(*prev) > frozenAfter {
				// The watchdog may run before the socket's backlog is read
				// on waking: remember the freeze for the reads that follow.
				c.thawed.Store(&freeze{from: *prev, until: now.Add(thawGrace)})
			}
			c.alive.Store(&now)
		}
	}
}

// freeze is a span the process did not run.
type freeze struct{ from, until time.Time }

// received is the lease start of a message read at now: now, or the start
// of a freeze the message may have waited through in the socket: the last
// time the watchdog ran when it has not run for a while, or the start of
// the freeze it saw when it ran just before this read.
func (c *pullConsumer) received(now time.Time) time.Time {
	if a := c.alive.Load(); a != nil && now.Sub(*a) > frozenAfter {
		return *a
	}
	if f := c.thawed.Load(); f != nil && now.Before(f.until) {
		return f.from
	}
	return now
}

// frozenAfter is the silence of the watchdog taken for a freeze; thawGrace
// is how long after it a read is taken to be the backlog of the freeze.
const (
	frozenAfter = 4 * watchEvery
	thawGrace   = time.Second
)
