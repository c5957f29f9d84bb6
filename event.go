package events

import (
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventsmock"
)

// Event is the envelope every event travels in (see envelope.Event).
type Event = envelope.Event

// TimeManager tells the time; inject one wherever events are stamped so that
// tests control it. It is envelope.Clock under the seed examples' name.
type TimeManager = envelope.Clock

// Clock is TimeManager's other name.
type Clock = envelope.Clock

// SystemClock is the TimeManager that reads the wall clock.
type SystemClock = envelope.SystemClock

// PublisherMock is a testify mock of Publisher, for service unit tests.
type PublisherMock = eventsmock.PublisherMock

// NewEvent builds an event with a fresh UUID and schema version "1.0". See
// envelope.NewEvent.
func NewEvent(eventType, source, organizationID string, timestamp time.Time, data map[string]interface{}) *Event {
	return envelope.NewEvent(eventType, source, organizationID, timestamp, data)
}

// NewEventWithData builds an event whose data is any JSON-encodable value,
// typically a struct. See envelope.NewWithData.
func NewEventWithData(eventType, source, organizationID string, timestamp time.Time, data any) (*Event, error) {
	return envelope.NewWithData(eventType, source, organizationID, timestamp, data)
}
