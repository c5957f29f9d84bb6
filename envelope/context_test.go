package envelope_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/jetevents/events/envelope"
)

func TestContext_carries_correlation_causation_and_organization(t *testing.T) {
	ctx := context.Background()
	assert.Empty(t, envelope.CorrelationID(ctx))
	assert.Empty(t, envelope.CausationID(ctx))
	assert.Empty(t, envelope.OrganizationID(ctx))

	ctx = envelope.WithCorrelationID(ctx, "corr-1")
	ctx = envelope.WithCausationID(ctx, "cause-1")
	ctx = envelope.WithOrganizationID(ctx, "org-1")
	assert.Equal(t, "corr-1", envelope.CorrelationID(ctx))
	assert.Equal(t, "cause-1", envelope.CausationID(ctx))
	assert.Equal(t, "org-1", envelope.OrganizationID(ctx))

	// The innermost value wins, the outer context is unchanged.
	inner := envelope.WithCausationID(ctx, "cause-2")
	assert.Equal(t, "cause-2", envelope.CausationID(inner))
	assert.Equal(t, "cause-1", envelope.CausationID(ctx))
}
