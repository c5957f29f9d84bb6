package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/examples/service"
)

// TimeManagerMock is a testify mock of the TimeManager, as the seed uses.
type TimeManagerMock struct{ mock.Mock }

func (m *TimeManagerMock) Now() time.Time { return m.Called().Get(0).(time.Time) }

// NewMyService is the seed test's constructor: the service on a mock publisher.
func NewMyService(publisher events.Publisher, tm service.TimeManager) *service.MyService {
	return service.New(publisher, tm)
}

var testData = &service.ResourceData{OrganizationID: "org-123", Type: "bucket"}

// The seed's "Testing with Mocks" snippet, verbatim.
func TestService_CreateResource(t *testing.T) {
	// Given
	mockPublisher := new(events.PublisherMock)
	mockTimeManager := new(TimeManagerMock)

	testTime := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	mockTimeManager.On("Now").Return(testTime)

	mockPublisher.On("Publish",
		mock.Anything,
		"my-service.resource.created",
		mock.MatchedBy(func(e *events.Event) bool {
			return e.Type == "resource.created" &&
				e.Source == "my-service" &&
				e.Timestamp.Equal(testTime)
		}),
	).Return(nil)

	service := NewMyService(mockPublisher, mockTimeManager)

	// When
	err := service.CreateResource(context.Background(), testData)

	// Then
	assert.NoError(t, err)
	mockPublisher.AssertExpectations(t)
}

func TestService_CreateResource_returns_the_publisher_error(t *testing.T) {
	mockPublisher := new(events.PublisherMock)
	mockPublisher.On("Publish", mock.Anything, mock.Anything, mock.Anything).Return(events.ErrNoStream)
	svc := NewMyService(mockPublisher, eventstest.NewClock(time.Unix(0, 0)))
	err := svc.CreateResource(context.Background(), testData)
	assert.True(t, errors.Is(err, events.ErrNoStream))
	mockPublisher.AssertNumberOfCalls(t, "Publish", 1)
}

// The seed's constructor on a real server: the event lands in the stream.
func TestService_CreateResource_on_the_embedded_server(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "MY_SERVICE", Subjects: []string{"my-service.>"}})
	require.NoError(t, err)

	clock := eventstest.NewClock(time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC))
	svc, err := service.NewMyService(srv.Conn, clock)
	require.NoError(t, err)
	require.NoError(t, svc.CreateResource(ctx, testData))
	require.NoError(t, svc.Close())
	assert.True(t, srv.Conn.IsConnected(), "the service's publisher leaves the connection open")

	m, err := s.GetLastMsgForSubject(ctx, "my-service.resource.created")
	require.NoError(t, err)
	var e events.Event
	require.NoError(t, e.UnmarshalJSON(m.Data))
	assert.Equal(t, "resource.created", e.Type)
	assert.Equal(t, "2024-01-15T00:00:00Z", m.Header.Get("ce-time"))
	d, err := e.DataMap()
	require.NoError(t, err)
	assert.Equal(t, "res-org-123", d["resource_id"])
}
