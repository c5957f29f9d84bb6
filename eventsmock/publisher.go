// Package eventsmock holds testify mocks of the jetevents interfaces. It is
// light (envelope, transport's option types and testify only) so that the
// root package can re-export PublisherMock as events.PublisherMock, as the
// seed examples use it.
package eventsmock

import (
	"context"

	"github.com/stretchr/testify/mock"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// PublisherMock is a testify mock of events.Publisher and
// events.AtomicPublisher. Set expectations with On("Publish", ctx, subject,
// event), On("PublishAsync", ...), On("CancelSchedule", ctx, subject,
// eventID), On("PublishAtomic", ctx, batch), On("Close");
// each method returns the error given to Return (nil when Return has no
// argument or a nil one). A publish with options is recorded with them
// after the event, so an expectation can name them:
// On("Publish", ctx, subject, event, events.After(24*time.Hour)); one
// without options matches an expectation of three arguments.
type PublisherMock struct {
	mock.Mock
}

// Publish records the call and returns the expected error.
func (m *PublisherMock) Publish(ctx context.Context, subject string, event *envelope.Event, opts ...transport.PublishOption) error {
	return errorOf(m.Called(callArgs(ctx, subject, event, opts)...))
}

// PublishAsync records the call and returns the expected error.
func (m *PublisherMock) PublishAsync(ctx context.Context, subject string, event *envelope.Event, opts ...transport.PublishOption) error {
	return errorOf(m.Called(callArgs(ctx, subject, event, opts)...))
}

// CancelSchedule records the call and returns the expected error.
func (m *PublisherMock) CancelSchedule(ctx context.Context, subject, eventID string) error {
	return errorOf(m.Called(ctx, subject, eventID))
}

// PublishAtomic records the call (ctx, batch, then the options) and returns
// what Return was given: an AtomicAck (or nothing: the zero ack) and an
// error.
func (m *PublisherMock) PublishAtomic(ctx context.Context, batch []transport.AtomicEvent, opts ...transport.PublishOption) (transport.AtomicAck, error) {
	args := []any{ctx, batch}
	for _, o := range opts {
		args = append(args, o)
	}
	ret := m.Called(args...)
	var ack transport.AtomicAck
	if len(ret) > 0 {
		if a, ok := ret.Get(0).(transport.AtomicAck); ok {
			ack = a
		}
	}
	if len(ret) > 1 {
		return ack, ret.Error(1)
	}
	return ack, nil
}

// callArgs are a publish's recorded arguments: the options follow the event.
func callArgs(ctx context.Context, subject string, event *envelope.Event, opts []transport.PublishOption) []any {
	args := []any{ctx, subject, event}
	for _, o := range opts {
		args = append(args, o)
	}
	return args
}

// Close records the call and returns the expected error.
func (m *PublisherMock) Close() error {
	return errorOf(m.Called())
}

// errorOf is the error given to Return, nil when Return had no argument
// (testify's Arguments.Error(0) panics then).
func errorOf(args mock.Arguments) error {
	if len(args) == 0 {
		return nil
	}
	return args.Error(0)
}
