package eventsmock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventsmock"
	"github.com/jetevents/events/transport"
)

func TestPublisherMock_matches_publish_options(t *testing.T) {
	ev := envelope.NewEvent("invoice.reminder", "billing", "org", envelope.SystemClock{}.Now(), nil)
	m := new(eventsmock.PublisherMock)
	m.On("Publish", mock.Anything, "billing.invoice.reminder", ev, transport.After(24*time.Hour)).Return(nil).Once()
	m.On("Publish", mock.Anything, "billing.invoice.paid", ev).Return(nil).Once()

	require.NoError(t, m.Publish(context.Background(), "billing.invoice.reminder", ev, transport.After(24*time.Hour)))
	require.NoError(t, m.Publish(context.Background(), "billing.invoice.paid", ev), "no options: three arguments, as before")
	assert.Panics(t, func() {
		_ = m.Publish(context.Background(), "billing.invoice.reminder", ev, transport.After(time.Hour))
	}, "another delay does not match the expectation")
	m.AssertExpectations(t)
}

func TestPublisherMock_cancel_schedule_and_publish_atomic(t *testing.T) {
	boom := errors.New("boom")
	ev := envelope.NewEvent("order.paid", "orders", "org", envelope.SystemClock{}.Now(), nil)
	batch := []transport.AtomicEvent{{Subject: "orders.o1.paid", Event: ev}}
	m := new(eventsmock.PublisherMock)
	m.On("CancelSchedule", mock.Anything, "billing.invoice.reminder", "id-1").Return(nil)
	m.On("CancelSchedule", mock.Anything, "billing.invoice.reminder", "id-2").Return(transport.ErrScheduleNotFound)
	m.On("PublishAtomic", mock.Anything, batch, transport.ExpectLastSequence("orders.o1.>", 4)).
		Return(transport.AtomicAck{Stream: "ORDERS", FirstSequence: 5, LastSequence: 5, Count: 1}, nil)
	m.On("PublishAtomic", mock.Anything, batch).Return(transport.AtomicAck{}, boom)

	assert.NoError(t, m.CancelSchedule(context.Background(), "billing.invoice.reminder", "id-1"))
	assert.ErrorIs(t, m.CancelSchedule(context.Background(), "billing.invoice.reminder", "id-2"), transport.ErrScheduleNotFound)
	ack, err := m.PublishAtomic(context.Background(), batch, transport.ExpectLastSequence("orders.o1.>", 4))
	require.NoError(t, err)
	assert.Equal(t, uint64(5), ack.LastSequence)
	_, err = m.PublishAtomic(context.Background(), batch)
	assert.ErrorIs(t, err, boom)
}
