package transport

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jetevents/events/envelope"
)

// Default Backoff values: 1s, 2s, 4s, ... capped at 1m, each ±20%.
const (
	defaultBackoffInitial    = time.Second
	defaultBackoffMax        = time.Minute
	defaultBackoffMultiplier = 2.0
	defaultBackoffJitter     = 0.2
)

// Backoff is an exponential schedule with jitter for broker-side retries:
// the delay before delivery attempt+1 after attempt failed. Its Delay method
// has the signature of the subscriber's NakDelay, so the same schedule drives
// both the retry middleware and plain Nacks. The zero value is the default
// schedule. A Backoff is a value: copying it is safe, and Delay is safe for
// concurrent use as long as Rand is.
type Backoff struct {
	// Initial is the delay after the first failed attempt. Default 1s.
	Initial time.Duration
	// Max caps every delay, jitter included. Default 1m.
	Max time.Duration
	// Multiplier grows the delay per attempt (Initial * Multiplier^(attempt-1)).
	// Default 2; must be >= 1.
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of its value, so that
	// messages that failed together are not redelivered together. Default 0.2;
	// must be <= 1; a negative value turns jitter off.
	Jitter float64
	// Rand returns a number in [0, 1), the jitter source. Default: math/rand/v2's
	// Float64, which needs no seeding and mutates no global state of ours.
	// Inject a fixed function for deterministic tests.
	Rand func() float64
}

func (b *Backoff) setDefaults() {
	if b.Initial == 0 {
		b.Initial = defaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = defaultBackoffMax
	}
	if b.Multiplier == 0 {
		b.Multiplier = defaultBackoffMultiplier
	}
	if b.Jitter == 0 {
		b.Jitter = defaultBackoffJitter
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
}

// Validate reports a schedule that cannot work, after defaults are applied
// (zero fields are valid: they take the defaults). Errors match envelope.ErrInvalidConfig.
func (b Backoff) Validate() error {
	b.setDefaults()
	switch {
	case b.Initial < 0:
		return fmt.Errorf("%w: backoff Initial %s is negative", envelope.ErrInvalidConfig, b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("%w: backoff Max %s is below Initial %s", envelope.ErrInvalidConfig, b.Max, b.Initial)
	case b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("%w: backoff Multiplier %v must be a finite number >= 1", envelope.ErrInvalidConfig, b.Multiplier)
	case b.Jitter > 1 || math.IsNaN(b.Jitter):
		return fmt.Errorf("%w: backoff Jitter %v must be <= 1", envelope.ErrInvalidConfig, b.Jitter)
	}
	return nil
}

// Delay returns the delay after delivery attempt failed (attempt is 1-based;
// 0 is read as 1): Initial * Multiplier^(attempt-1), spread by Jitter, never
// above Max and never negative. It never panics: out-of-range fields are
// clamped (use Validate to reject them up front).
func (b Backoff) Delay(attempt uint64) time.Duration {
	b.setDefaults()
	if attempt == 0 {
		attempt = 1
	}
	limit := float64(max(b.Max, 0))
	d := float64(max(b.Initial, 0)) * math.Pow(max(b.Multiplier, 1), float64(attempt-1))
	if math.IsNaN(d) || d > limit {
		d = limit
	}
	if j := min(b.Jitter, 1); j > 0 {
		d *= 1 - j + 2*j*b.Rand()
	}
	if math.IsNaN(d) || d > limit {
		d = limit
	}
	if d >= math.MaxInt64 {
		// float64(MaxInt64) rounds up: converting it back would wrap to a
		// negative delay (an immediate redelivery loop).
		return max(b.Max, 0)
	}
	return time.Duration(max(d, 0))
}
