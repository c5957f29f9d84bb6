package envelope

import "time"

// Clock tells the time. It is the seed examples' TimeManager: inject a Clock
// wherever the library stamps an event, and it never calls time.Now itself.
type Clock interface {
	Now() time.Time
}

// SystemClock is the Clock that reads the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// ClockFunc adapts a function to the Clock interface.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }
