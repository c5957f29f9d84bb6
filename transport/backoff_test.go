package transport_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestBackoff_delay_grows_exponentially_with_jitter_and_is_capped(t *testing.T) {
	tests := []struct {
		name    string
		b       transport.Backoff
		attempt uint64
		want    time.Duration
	}{
		{"defaults, attempt 1, mid jitter", transport.Backoff{Rand: fixedRand(0.5)}, 1, time.Second},
		{"defaults, attempt 2", transport.Backoff{Rand: fixedRand(0.5)}, 2, 2 * time.Second},
		{"defaults, attempt 3", transport.Backoff{Rand: fixedRand(0.5)}, 3, 4 * time.Second},
		{"attempt 0 reads as 1", transport.Backoff{Rand: fixedRand(0.5)}, 0, time.Second},
		{"lowest jitter -20%", transport.Backoff{Rand: fixedRand(0)}, 3, 3200 * time.Millisecond},
		{"upper jitter +10%", transport.Backoff{Rand: fixedRand(0.75)}, 1, 1100 * time.Millisecond},
		{"capped at Max", transport.Backoff{Rand: fixedRand(0.5)}, 7, time.Minute},
		{"jitter never exceeds Max", transport.Backoff{Rand: fixedRand(0.999)}, 40, time.Minute},
		{"huge attempt does not overflow", transport.Backoff{Rand: fixedRand(0.5)}, 1 << 62, time.Minute},
		{"custom schedule", transport.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 3, Jitter: -1}, 4, 2700 * time.Millisecond},
		{"jitter off ignores Rand", transport.Backoff{Jitter: -1, Rand: fixedRand(0)}, 2, 2 * time.Second},
		{"multiplier 1 is constant", transport.Backoff{Multiplier: 1, Jitter: -1}, 9, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.b.Validate())
			assert.Equal(t, tt.want, tt.b.Delay(tt.attempt))
		})
	}
}

func TestBackoff_default_jitter_stays_within_bounds(t *testing.T) {
	var b transport.Backoff // real random source
	for attempt := uint64(1); attempt <= 10; attempt++ {
		base := min(time.Second<<(attempt-1), time.Minute)
		d := b.Delay(attempt)
		assert.GreaterOrEqual(t, d, time.Duration(float64(base)*0.8), "attempt %d", attempt)
		assert.LessOrEqual(t, d, min(time.Duration(float64(base)*1.2), time.Minute), "attempt %d", attempt)
	}
}

func TestBackoff_validate_rejects_unusable_schedules(t *testing.T) {
	tests := []struct {
		name string
		b    transport.Backoff
	}{
		{"negative initial", transport.Backoff{Initial: -time.Second}},
		{"max below initial", transport.Backoff{Initial: time.Minute, Max: time.Second}},
		{"multiplier below 1", transport.Backoff{Multiplier: 0.5}},
		{"jitter above 1", transport.Backoff{Jitter: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.b.Validate(), envelope.ErrInvalidConfig)
		})
	}
}

func TestBackoff_never_overflows_to_a_negative_delay_with_an_unbounded_max(t *testing.T) {
	b := transport.Backoff{Initial: time.Second, Max: time.Duration(math.MaxInt64), Jitter: -1}
	for _, attempt := range []uint64{1, 40, 62, 63, 64, 100, 1 << 40} {
		got := b.Delay(attempt)
		assert.Positive(t, got, "attempt %d", attempt)
		assert.LessOrEqual(t, got, time.Duration(math.MaxInt64), "attempt %d", attempt)
	}
}
