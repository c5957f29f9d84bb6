package middleware_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/middleware"
)

func TestPermanent_is_detected_through_wrapping_and_keeps_the_cause(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"nil", nil, false},
		{"plain error", cause, false},
		{"permanent", middleware.Permanent(cause), true},
		{"wrapped with %w", fmt.Errorf("handle user.created: %w", middleware.Permanent(cause)), true},
		{"joined", errors.Join(errors.New("other"), middleware.Permanent(cause)), true},
		{"permanent of a wrapped cause", middleware.Permanent(fmt.Errorf("decode: %w", cause)), true},
		{"wrapped with %v (chain cut)", fmt.Errorf("x: %v", middleware.Permanent(cause)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.permanent, middleware.IsPermanent(tt.err))
			assert.Equal(t, tt.permanent, errors.Is(tt.err, middleware.ErrPermanent))
			if tt.permanent {
				assert.ErrorIs(t, tt.err, cause, "the cause stays reachable")
			}
		})
	}
}

func TestPermanent_nil_and_idempotent_wrapping(t *testing.T) {
	require.NoError(t, middleware.Permanent(nil))

	p := middleware.Permanent(io.EOF)
	assert.Same(t, p, middleware.Permanent(p), "already permanent: returned as is")
	assert.Equal(t, io.EOF.Error(), p.Error(), "the text is the cause's")

	var pe *middleware.PermanentError
	require.ErrorAs(t, fmt.Errorf("x: %w", p), &pe)
	assert.Equal(t, io.EOF, pe.Err)
}
