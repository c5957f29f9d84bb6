package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDurText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 450 * time.Millisecond: "450ms", 12 * time.Second: "12s", 70 * time.Second: "1m10s",
		30 * time.Minute: "30m", 95 * time.Second: "1m35s", 5*time.Hour + 3*time.Minute: "5h3m", 2 * time.Hour: "2h",
		50 * time.Hour: "2d2h", time.Hour - 100*time.Millisecond: "1h", time.Minute - 300*time.Millisecond: "1m",
	} {
		assert.Equal(t, want, durText(d), "%v", d)
	}
	assert.Equal(t, "100,000", numText(uint64(100000)))
	assert.Equal(t, "-1,234", numText(-1234))
	assert.Equal(t, "999", numText(999))
}
