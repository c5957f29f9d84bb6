package marshaler_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
)

// TestWire_published_event_reads_back_with_plain_nats proves the wire contract
// against a real stream: every header and the payload, read with nats.go only.
func TestWire_published_event_reads_back_with_plain_nats(t *testing.T) {
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := srv.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "AUTH_EVENTS", Subjects: []string{"auth.>"}})
	require.NoError(t, err)

	ts := time.Date(2024, 1, 15, 12, 30, 45, 0, time.FixedZone("CET+2", 2*3600))
	e := envelope.NewEvent("user.created", "auth service", "org-123", ts, map[string]interface{}{
		"user_id": 12345, "email": "user@example.com", "role": "admin",
	})
	msg, err := marshaler.Default().EventToNATS("auth.user.created", e, marshaler.Relations{CorrelationID: "corr 1", CausationID: "cause-1"})
	require.NoError(t, err)
	ack, err := srv.JS.PublishMsg(ctx, msg)
	require.NoError(t, err)
	require.Equal(t, "AUTH_EVENTS", ack.Stream)

	raw, err := stream.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	assert.Equal(t, "auth.user.created", raw.Subject)
	want := map[string]string{
		"Nats-Msg-Id":       e.ID,
		"Content-Type":      "application/json",
		"ce-specversion":    "1.0",
		"ce-id":             e.ID,
		"ce-type":           "user.created",
		"ce-source":         "auth%20service",
		"ce-time":           "2024-01-15T10:30:45Z",
		"ce-organizationid": "org-123",
		"ce-schemaversion":  "1.0",
		"ce-correlationid":  "corr%201",
		"ce-causationid":    "cause-1",
	}
	assert.Len(t, raw.Header, len(want))
	for k, v := range want {
		assert.Equal(t, []string{v}, raw.Header.Values(k), "header %s", k)
	}
	assert.JSONEq(t, `{"id":"`+e.ID+`","type":"user.created","source":"auth service","organization_id":"org-123",
		"timestamp":"2024-01-15T10:30:45Z","schema_version":"1.0",
		"data":{"user_id":12345,"email":"user@example.com","role":"admin"}}`, string(raw.Data))

	// And back through the unmarshaler.
	wm, got, err := marshaler.Default().DecodeNATS(raw.Header, raw.Data)
	require.NoError(t, err)
	assert.Equal(t, e.ID, wm.UUID)
	assert.Equal(t, "corr 1", wm.Metadata.Get(marshaler.MetadataCorrelationID))
	assert.Equal(t, "cause-1", wm.Metadata.Get(marshaler.MetadataCausationID))
	assert.Equal(t, "auth service", got.Source)
	assert.True(t, got.Timestamp.Equal(ts))
	var data struct {
		UserID int    `json:"user_id"`
		Email  string `json:"email"`
	}
	require.NoError(t, got.DecodeData(&data))
	assert.Equal(t, 12345, data.UserID)
}
