package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
)

func TestTimeout_cancels_the_handler_and_restores_the_context(t *testing.T) {
	mw, err := middleware.Timeout(time.Millisecond)
	require.NoError(t, err)

	msg := message.NewMessage("id", nil)
	parent := envelope.WithCorrelationID(context.Background(), "corr")
	msg.SetContext(parent)

	_, err = mw(func(m *message.Message) ([]*message.Message, error) {
		assert.Equal(t, "corr", envelope.CorrelationID(m.Context()), "values survive")
		_, hasDeadline := m.Context().Deadline()
		assert.True(t, hasDeadline)
		<-m.Context().Done() // the deadline fires: no guessing how long
		return nil, m.Context().Err()
	})(msg)

	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Same(t, parent, msg.Context(), "outer middleware sees the original context")
	assert.NoError(t, msg.Context().Err())
}

func TestTimeout_rejects_non_positive_durations(t *testing.T) {
	_, err := middleware.Timeout(0)
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}
