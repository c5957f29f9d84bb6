package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/jetevents/events/envelope"
)

// Data returns a JSON object of exactly size bytes (size >= 64): a realistic
// user.created payload padded with a filler string.
func Data(size int) ([]byte, error) {
	const head = `{"user_id":"u-1f3a9c","email":"ada@example.com","plan":"pro","pad":"`
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
	ts := time.Date(2024, 1, 15, 10, 30, 45, 123456000, time.UTC)
	events := make([]*envelope.Event, n)
	backing := make([]envelope.Event, n)
	for i := range events {
		backing[i] = envelope.Event{
			ID:             envelope.NewID(),
			Type:           "user.created",
			Source:         "auth-service",
			OrganizationID: "org-42",
			Timestamp:      ts,
			SchemaVersion:  envelope.DefaultSchemaVersion,
			Data:           data,
		}
		events[i] = &backing[i]
	}
	return events, nil
}
