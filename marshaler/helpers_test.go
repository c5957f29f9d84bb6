package marshaler_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

const (
	testID   = "550e8400-e29b-41d4-a716-446655440000"
	testTime = "2024-01-15T10:30:45Z"
)

var testTimestamp = time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)

// seedEvent is the seed examples' event.
func seedEvent() *envelope.Event {
	return &envelope.Event{
		ID:             testID,
		Type:           "user.created",
		Source:         "auth-service",
		OrganizationID: "org-123",
		Timestamp:      testTimestamp,
		SchemaVersion:  "1.0",
		Data:           json.RawMessage(`{"user_id":12345,"email":"user@example.com","role":"admin"}`),
	}
}

// seedPayload is seedEvent's wire form.
const seedPayload = `{"id":"` + testID + `","type":"user.created","source":"auth-service","organization_id":"org-123",` +
	`"timestamp":"` + testTime + `","schema_version":"1.0","data":{"user_id":12345,"email":"user@example.com","role":"admin"}}`

func mustNew(t testing.TB, cfg marshaler.Config) *marshaler.Marshaler {
	t.Helper()
	m, err := marshaler.New(cfg)
	require.NoError(t, err)
	return m
}

// header builds a nats.Header from key/value pairs, keeping repeats.
func header(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// binaryHeader is a complete CloudEvents binary-mode header set.
func binaryHeader() nats.Header {
	return header(
		"ce-specversion", "1.0",
		"ce-id", "evt-42",
		"ce-type", "com.example.order.placed",
		"ce-source", "https://example.com/shop%20eu",
		"ce-time", "2024-01-15T12:30:45.5+02:00",
		"ce-organizationid", "org-9",
		"ce-schemaversion", "1.3",
		"ce-correlationid", "corr-7",
		"ce-causationid", "cause-7",
		"ce-subject", "order%2F42",
		"Content-Type", "application/json; charset=utf-8",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	)
}

// structuredPayload is a complete CloudEvents structured-mode event.
const structuredPayload = `{
	"specversion": "1.0",
	"id": "evt-43",
	"type": "com.example.order.shipped",
	"source": "/shop/eu",
	"time": "2024-01-15T10:30:45Z",
	"organizationid": "org-9",
	"schemaversion": "1.1",
	"correlationid": "corr-8",
	"causationid": "cause-8",
	"subject": "order/43",
	"priority": 3,
	"urgent": true,
	"datacontenttype": "application/json",
	"data": {"order_id": 43, "carrier": "DHL"}
}`

func structuredHeader() nats.Header {
	return header("Content-Type", marshaler.ContentTypeCloudEvent)
}
