// Package service is the seed's "Service Integration" pattern as a real,
// tested package: a service that publishes an event from its business logic,
// with the publisher and the TimeManager injected so that its unit test runs
// on events.PublisherMock and a fake clock (service_test.go), and its
// integration test on an embedded JetStream server.
//
// Its consumer side, the Notifier (notifications.go), is a router handler:
// its tests run the service, the handler and a real router on the in-memory
// bus with no server (notifications_test.go, milliseconds per test), and the
// same cases on an embedded JetStream server
// (notifications_integration_test.go).
//
// Its database side, TxService (resources.go), stores the resource and
// publishes its event in one transaction through the outbox (package
// outbox): the seed's CreateResource, unchanged, with the transaction's
// publisher (resources_test.go, on SQLite and PostgreSQL).
package service

import (
	"context"

	"github.com/nats-io/nats.go"

	events "github.com/jetevents/events"
)

// TimeManager tells the time (events.TimeManager).
type TimeManager = events.TimeManager

// ResourceData is the input of CreateResource.
type ResourceData struct {
	OrganizationID string
	Type           string
}

// Resource is what CreateResource creates.
type Resource struct {
	ID   string
	Type string
}

// MyService publishes resource.created whenever it creates a resource.
type MyService struct {
	publisher   events.Publisher
	timeManager TimeManager
}

// NewMyService is the seed's constructor: the publisher is built on a NATS
// connection the service does not own.
func NewMyService(natsConn *nats.Conn, timeManager TimeManager) (*MyService, error) {
	publisher, err := events.NewPublisher(natsConn)
	if err != nil {
		return nil, err
	}

	return &MyService{
		publisher:   publisher,
		timeManager: timeManager,
	}, nil
}

// New builds the service on any events.Publisher (PublisherMock in tests).
func New(publisher events.Publisher, timeManager TimeManager) *MyService {
	return &MyService{publisher: publisher, timeManager: timeManager}
}

// CreateResource creates a resource and publishes resource.created.
func (s *MyService) CreateResource(ctx context.Context, data *ResourceData) error {
	// Business logic...
	resource := createResource(data)

	// Publish event
	event := events.NewEvent(
		"resource.created",
		"my-service",
		data.OrganizationID,
		s.timeManager.Now(),
		map[string]interface{}{
			"resource_id": resource.ID,
			"type":        resource.Type,
		},
	)

	return s.publisher.Publish(ctx, "my-service.resource.created", event)
}

// Close closes the publisher (flushing async publishes); not the connection.
func (s *MyService) Close() error { return s.publisher.Close() }

func createResource(data *ResourceData) Resource {
	return Resource{ID: "res-" + data.OrganizationID, Type: data.Type}
}
