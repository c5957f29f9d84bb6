package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

var _ transport.Pauser = (*Bus)(nil)

// Pause pauses the durable until until, on the bus's clock, as JetStream's
// consumer pause does (see transport.Pauser): nothing is delivered to any
// consumer bound to it, first deliveries and redeliveries alike, until the
// clock passes until; then delivery resumes by itself. With the system
// clock the bus's timer resumes it; with a manual clock, the first Tick
// after the clock passed until does, so a test of "paused for 24 h" advances
// the clock and ticks. A consumer bound to it stays active meanwhile. Errors
// match envelope.ErrInvalidConfig (until not after the bus's now),
// transport.ErrNoConsumer, transport.ErrNoStream or transport.ErrClosed.
func (b *Bus) Pause(ctx context.Context, streamName, durableName string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pause %s/%s: %w", streamName, durableName, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := b.pauseTargetLocked(streamName, durableName)
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	if now := b.now(); !until.After(now) {
		return fmt.Errorf("pause %s/%s: %w: until %s is not after the bus's clock %s", streamName, durableName,
			envelope.ErrInvalidConfig, until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	d.pausedUntil = until
	b.scheduleLocked(until)
	return nil
}

// Resume delivers again at once (see transport.Pauser). Errors as Pause's.
func (b *Bus) Resume(ctx context.Context, streamName, durableName string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("resume %s/%s: %w", streamName, durableName, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := b.pauseTargetLocked(streamName, durableName)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	d.pausedUntil = time.Time{}
	d.dispatchLocked(b.now())
	return nil
}

func (b *Bus) pauseTargetLocked(streamName, durableName string) (*durable, error) {
	if b.closed {
		return nil, transport.ErrClosed
	}
	return b.durableLocked(streamName, durableName)
}
