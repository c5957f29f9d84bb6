//go:build stress

package memory_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// TestPubSubStress runs Watermill's stress variant of the conformance suite
// (STRESS_TEST_COUNT parallel copies of TestPubSub, 10 by default, all on one
// bus) with the features and constructors of the conformance run. `make
// stress` runs it.
func TestPubSubStress(t *testing.T) {
	pubSub, withGroup := conformanceConstructors(t)
	tests.TestPubSubStressTest(t, conformanceFeatures(), pubSub, withGroup)
}
