//go:build stress

package jetstream_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/jetevents/events/eventstest"
)

// TestPubSubStress runs Watermill's stress variant of the conformance suite
// (STRESS_TEST_COUNT parallel copies of TestPubSub, 10 by default) with the
// same features and constructors as the conformance run (MessagePublisher
// and Subscriber). `make stress` runs it; it is too long for every `make test`.
func TestPubSubStress(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubSub, withGroup := conformanceConstructors(srv)
	tests.TestPubSubStressTest(t, conformanceFeatures(), pubSub, withGroup)
}
