package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
)

// Recovery of a pull consumer: its loop watches the pulls' heartbeats,
// reads the durable's ack floor after progress, and recovers a dead pull
// (a lost request, a leader change, a restarted server, a deleted durable).

// loop checks the heartbeats every Heartbeat and recovers dead pulls. A
// reconnect recovers at once: the server a pull request was waiting at may
// have restarted and forgotten it, and waiting two heartbeats to notice
// would idle the group for no reason. Each tick also forgets unanswered
// lease renewals and, after progress, reads the durable's ack floor.
func (c *pullConsumer) loop() {
	defer close(c.loopDone)
	hb := c.hb
	tick := time.NewTicker(hb)
	defer tick.Stop()
	reconnected := c.t.nc.StatusChanged(nats.CONNECTED)
	defer c.t.nc.RemoveStatusListener(reconnected)
	for {
		var reason string
		select {
		case <-c.stopCh:
			return
		case reason = <-c.recover:
		case <-reconnected:
			reason = "reconnected"
		case <-tick.C:
			c.pruneLeases()
			c.readFloor()
			c.mu.Lock()
			waiting := c.outstanding > 0
			c.mu.Unlock()
			silent := time.Since(time.Unix(0, c.lastSeen.Load()))
			if !waiting || silent < 2*hb {
				continue
			}
			reason = fmt.Sprintf("no message or heartbeat for %s with pulls outstanding", silent.Round(time.Millisecond))
		}
		if !c.recoverPull(reason) {
			return
		}
	}
}

// raiseFloor records an ack floor read from the server. The floor only
// rises: reads overlap (the loop's, a Health probe's), and an older answer
// arriving last must not lower it. (A stream recreated below it is
// caught when the durable is recreated: see recreated.)
func (c *pullConsumer) raiseFloor(floor uint64) {
	for {
		old := c.ackFloor.Load()
		if floor <= old || c.ackFloor.CompareAndSwap(old, floor) {
			return
		}
	}
}

// readFloor reads the durable's ack floor when messages were settled since
// the last read (one consumer info per Heartbeat at most, while busy).
func (c *pullConsumer) readFloor() {
	n := c.settled.Load()
	if n == c.floorSettled || !c.t.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(c.stopCtx, min(max(c.hb, 250*time.Millisecond), c.t.cfg.APITimeout))
	defer cancel()
	if info, err := c.info(ctx); err == nil {
		c.raiseFloor(info.AckFloor.Stream)
		c.floorSettled = n
	}
}

// recoverPull forgets the outstanding pulls, makes sure the durable exists
// (recreating it from the spec when it is gone) and pulls again. It returns
// false when the consumer ended (stopped, or the durable cannot be
// recovered).
func (c *pullConsumer) recoverPull(reason string) bool {
	start := time.Now()
	c.mu.Lock()
	c.recovering = true
	c.credit += c.outstanding
	c.outstanding = 0
	c.mu.Unlock()
	c.setState(transport.StateStalled, errors.New(reason))
	if perr := c.pullRefused(); perr != nil {
		// Permission to pull withdrawn: waiting will not heal it.
		c.end(perr)
		return false
	}

	delay := min(defaultRecoveryDelay, max(c.hb/2, 10*time.Millisecond))
	for {
		if !c.t.nc.IsConnected() {
			// Nothing to check while disconnected: the reconnect wakes the
			// loop again (and a check now would only time out).
			c.log.Debug("Waiting for the connection before recovering", watermill.LogFields{"cause": reason})
			select {
			case <-c.stopCh:
				return false
			case <-time.After(delay):
			}
			continue
		}
		err := c.check()
		if err == nil {
			break
		}
		// A stream that is gone may be on its way back (deleted and
		// recreated by a setup script): it gets two heartbeats, the same
		// budget as a lost pull, before the consumer ends.
		if errors.Is(err, transport.ErrConsumerEnded) && (!errors.Is(err, transport.ErrNoStream) || time.Since(start) >= 2*c.hb) {
			c.end(err)
			return false
		}
		c.log.Debug("Durable not reachable yet, retrying", watermill.LogFields{"error": err.Error()})
		select {
		case <-c.stopCh:
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, max(c.hb/2, 10*time.Millisecond))
	}
	c.mu.Lock()
	c.recovering = false
	batch := c.takePullLocked()
	c.mu.Unlock()
	c.pull(batch)
	c.setState(transport.StateActive, nil)
	c.warn("Consumer recovered, pulling again", nil, watermill.LogFields{"after": time.Since(start).Round(time.Millisecond).String(), "cause": reason})
	return true
}

// check reads the durable and recreates it when it is gone. Errors that
// cannot heal by waiting (stream gone, permission) match
// transport.ErrConsumerEnded.
func (c *pullConsumer) check() error {
	// Each check is bounded by a heartbeat, not APITimeout: during a
	// leader election a request can go unanswered, and the next try, sent
	// once a leader exists, must not wait behind it (measured in a 3-node
	// cluster with a 500 ms heartbeat: resuming 4.6 s after the new
	// consumer leader with APITimeout, about 1 s with two heartbeats).
	ctx, cancel := context.WithTimeout(c.stopCtx, min(max(c.hb, 250*time.Millisecond), c.t.cfg.APITimeout))
	defer cancel()
	info, err := c.info(ctx)
	if err == nil {
		c.raiseFloor(info.AckFloor.Stream)
	}
	if errors.Is(err, natsjs.ErrConsumerNotFound) {
		var from string
		if from, err = c.recreate(ctx); err == nil {
			c.warn("Durable consumer was gone and has been recreated from the group's config", nil, watermill.LogFields{"start": from})
			return nil
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, natsjs.ErrStreamNotFound):
		return fmt.Errorf("%w: %w: %w: stream %s no longer exists: recreate it (./scripts/setup-nats-streams.sh) and restart: %w",
			transport.ErrConsumerEnded, transport.ErrSubscribe, transport.ErrNoStream, c.spec.Stream, err)
	case isPermission(err):
		return fmt.Errorf("%w: %w: %w: durable %s on stream %s: %w", transport.ErrConsumerEnded, transport.ErrSubscribe, transport.ErrPermission, c.spec.Durable, c.spec.Stream, err)
	}
	return err
}

// recreate creates the durable again (see recreated), paused until it is
// checked. nats-server v2.15 can give a durable created a moment after one
// of the same name was deleted the deleted one's state (its in-flight
// messages pending: all redelivered after AckWait, a whole batch of
// duplicates; seen under load in TestRouter_durable_deleted_out_of_band_...),
// so a new durable that does not start clean where it was asked (nothing
// ack pending, its start honoured) is deleted and created again, a little
// later, before anything is delivered.
func (c *pullConsumer) recreate(ctx context.Context) (string, error) {
	want, from := c.recreated(ctx)
	for {
		paused := time.Now().Add(time.Minute)
		cfg := want
		cfg.PauseUntil = &paused
		created, err := c.t.js.CreateConsumer(ctx, c.spec.Stream, cfg)
		if err != nil {
			return "", err
		}
		ci := created.CachedInfo()
		clean := ci.NumAckPending == 0 && ci.NumRedelivered == 0 &&
			(want.DeliverPolicy != natsjs.DeliverByStartSequencePolicy || ci.Delivered.Stream+1 >= want.OptStartSeq)
		if clean {
			if _, err := c.t.js.ResumeConsumer(ctx, c.spec.Stream, c.spec.Durable); err != nil {
				return "", fmt.Errorf("resume recreated durable: %w", err)
			}
			return from, nil
		}
		c.warn("Recreated durable did not start clean; creating it again", nil, watermill.LogFields{"asked": want.OptStartSeq, "delivered": ci.Delivered.Stream, "ack_pending": ci.NumAckPending})
		if err := c.t.js.DeleteConsumer(ctx, c.spec.Stream, c.spec.Durable); err != nil && !errors.Is(err, natsjs.ErrConsumerNotFound) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recreated is the config of a durable recreated after it was deleted out
// of band, and where it starts: right after the last ack floor read from
// the server (every message at or below it was settled by some process of
// the group, so nothing is skipped and at most the settlements since that
// read are handled again), or at the group's start position when no floor
// is known or the stream was recreated below it.
func (c *pullConsumer) recreated(ctx context.Context) (natsjs.ConsumerConfig, string) {
	want := c.want
	floor := c.ackFloor.Load()
	if floor == 0 {
		return want, "the group's start position (no ack floor known)"
	}
	if s, err := c.t.js.Stream(ctx, c.spec.Stream); err == nil && s.CachedInfo().State.LastSeq < floor {
		c.ackFloor.Store(0) // the old floor means nothing on the new stream
		return want, fmt.Sprintf("the group's start position (the stream was recreated below the last ack floor %d)", floor)
	}
	want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = natsjs.DeliverByStartSequencePolicy, floor+1, nil
	return want, fmt.Sprintf("stream sequence %d (after the last ack floor read from the server)", floor+1)
}
