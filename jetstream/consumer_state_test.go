package jetstream_test

import (
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"

	"github.com/jetevents/events/jetstream"
)

func TestConsumerStalled(t *testing.T) {
	now := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	long, recent := now.Add(-time.Hour), now.Add(-time.Second)
	tests := []struct {
		name string
		ci   natsjs.ConsumerInfo
		want bool
	}{
		{"nothing waits", natsjs.ConsumerInfo{}, false},
		{"pending, never active, nothing pulls", natsjs.ConsumerInfo{NumPending: 3}, true},
		{"ack pending, idle for an hour", natsjs.ConsumerInfo{NumAckPending: 1, Delivered: natsjs.SequenceInfo{Last: &long}}, true},
		{"pending, active a second ago", natsjs.ConsumerInfo{NumPending: 3, AckFloor: natsjs.SequenceInfo{Last: &recent}}, false},
		{"pending, a pull waits", natsjs.ConsumerInfo{NumPending: 3, NumWaiting: 1}, false},
		{"pending, push bound", natsjs.ConsumerInfo{NumPending: 3, PushBound: true}, false},
		{"pending, paused", natsjs.ConsumerInfo{NumPending: 3, Paused: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, jetstream.ConsumerStalled(&tt.ci, now, time.Minute))
		})
	}
	ci := natsjs.ConsumerInfo{Delivered: natsjs.SequenceInfo{Last: &long}, AckFloor: natsjs.SequenceInfo{Last: &recent}}
	assert.Equal(t, recent, jetstream.ConsumerLastActive(&ci))
}
