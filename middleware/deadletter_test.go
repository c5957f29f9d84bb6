package middleware_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

func TestClassify_names_the_dead_letter_reason(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"nil", nil, ""},
		{"ordinary error is retried", boom, ""},
		{"permanent", middleware.Permanent(boom), middleware.ReasonPermanent},
		{"verdict with reason", middleware.DeadLetter(middleware.ReasonUnknownType, boom), middleware.ReasonUnknownType},
		{"verdict without reason", middleware.DeadLetter("", boom), middleware.ReasonHandlerError},
		{"verdict wins over permanent inside", middleware.DeadLetter(middleware.ReasonSchemaVersion, middleware.Permanent(boom)), middleware.ReasonSchemaVersion},
		{"unknown schema major", fmt.Errorf("%w: %w", marshaler.ErrUnmarshal, marshaler.ErrUnknownSchemaMajor), middleware.ReasonSchemaVersion},
		{"unmarshal", fmt.Errorf("x: %w", marshaler.ErrUnmarshal), middleware.ReasonUnmarshal},
		{"data decode", fmt.Errorf("x: %w", envelope.ErrDataDecode), middleware.ReasonUnmarshal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := middleware.Classify(tt.err)
			assert.Equal(t, tt.reason, reason)
			assert.Equal(t, tt.reason != "", ok)
		})
	}
}

func TestDeadLetter_keeps_the_cause_reachable(t *testing.T) {
	boom := errors.New("boom")
	err := fmt.Errorf("route: %w", middleware.DeadLetter(middleware.ReasonSchemaVersion, boom))
	assert.ErrorIs(t, err, boom)
	var dl *middleware.DeadLetterError
	assert.ErrorAs(t, err, &dl)
	assert.Equal(t, "dead-letter (schema_version): boom", dl.Error())
}
