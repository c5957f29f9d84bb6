package eventsmock_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventsmock"
)

func TestPublisherMock_returns_what_Return_was_given(t *testing.T) {
	boom := errors.New("boom")
	ev := envelope.NewEvent("user.created", "svc", "org", envelope.SystemClock{}.Now(), nil)
	tests := []struct {
		name   string
		ret    []any
		wantIs error
	}{
		{"Return() with no argument is nil", nil, nil},
		{"Return(nil) is nil", []any{nil}, nil},
		{"Return(err) is err", []any{boom}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(eventsmock.PublisherMock)
			m.On("Publish", mock.Anything, "s.a", ev).Return(tt.ret...)
			m.On("PublishAsync", mock.Anything, "s.a", ev).Return(tt.ret...)
			m.On("Close").Return(tt.ret...)
			calls := map[string]func() error{
				"Publish":      func() error { return m.Publish(context.Background(), "s.a", ev) },
				"PublishAsync": func() error { return m.PublishAsync(context.Background(), "s.a", ev) },
				"Close":        m.Close,
			}
			for name, call := range calls {
				var err error
				assert.NotPanics(t, func() { err = call() }, name)
				if tt.wantIs == nil {
					assert.NoError(t, err, name)
				} else {
					assert.ErrorIs(t, err, tt.wantIs, name)
				}
			}
			m.AssertExpectations(t)
		})
	}
}
