package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/jetevents/events/envelope"
)

// UserCreated is the data of the seed document's user.created event, as a
// user's handler declares it. The benchmark's "pad" field (which sizes the
// event) is not in it: both the raw baseline and the router's typed handler
// skip it alike.
type UserCreated struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// UserEnvelope is the envelope as a user without this library would declare
// it for encoding/json: the seed document's fields, the timestamp a
// time.Time, the data a typed struct.
type UserEnvelope struct {
	ID             string      `json:"id"`
	Type           string      `json:"type"`
	Source         string      `json:"source"`
	OrganizationID string      `json:"organization_id"`
	Timestamp      time.Time   `json:"timestamp"`
	SchemaVersion  string      `json:"schema_version"`
	Data           UserCreated `json:"data"`
}

// Data returns a JSON object of exactly size bytes (size >= 67): the seed
// document's user.created data (user_id a number, email, role) padded with a
// filler string.
func Data(size int) ([]byte, error) {
	const head = `{"user_id":12345,"email":"ada@example.com","role":"admin","pad":"`
	const tail = `"}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		return nil, fmt.Errorf("bench: data size %d is below the minimum %d", size, len(head)+len(tail))
	}
	return []byte(head + strings.Repeat("x", pad) + tail), nil
}

// Events builds n valid events whose data is size bytes. Each has its own id
// (so JetStream de-duplication keeps every one); they share one data slice,
// which nobody writes to, so building a million costs little memory. Ids are
// generated here, outside the measured section, for every variant alike.
func Events(n, size int) ([]*envelope.Event, error) {
	data, err := Data(size)
	if err != nil {
		return nil, err
	}
	events := make([]*envelope.Event, n)
	backing := make([]envelope.Event, n)
	for i := range events {
		backing[i] = newEvent(data)
		events[i] = &backing[i]
	}
	return events, nil
}

// eventTime is every benchmark event's timestamp.
var eventTime = time.Date(2024, 1, 15, 10, 30, 45, 123456000, time.UTC)

func newEvent(data []byte) envelope.Event {
	return envelope.Event{
		ID:             envelope.NewID(),
		Type:           "user.created",
		Source:         "auth-service",
		OrganizationID: "org-42",
		Timestamp:      eventTime,
		SchemaVersion:  envelope.DefaultSchemaVersion,
		Data:           data,
	}
}
