package middleware_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

func TestCorrelation_puts_ids_in_context_and_on_produced_messages(t *testing.T) {
	tests := []struct {
		name        string
		incoming    string // correlation_id metadata of the handled message
		eventID     string // ce-id metadata; "" = only the UUID
		wantCorr    string
		wantCause   string
		preset      map[string]string // metadata already on the produced message
		wantOutCorr string
		wantOutCaus string
	}{
		{"incoming correlation id is kept", "corr-A", "ev-1", "corr-A", "ev-1", nil, "corr-A", "ev-1"},
		{"missing correlation id is created", "", "ev-1", "generated", "ev-1", nil, "generated", "ev-1"},
		{"causation falls back to the message UUID", "corr-A", "", "corr-A", "uuid-1", nil, "corr-A", "uuid-1"},
		{"produced message keeps its own ids", "corr-A", "ev-1", "corr-A", "ev-1",
			map[string]string{marshaler.MetadataCorrelationID: "own", marshaler.MetadataCausationID: "own-cause"}, "own", "own-cause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := middleware.NewCorrelation(middleware.CorrelationConfig{NewID: func() string { return "generated" }})
			require.NoError(t, err)
			msg := message.NewMessage("uuid-1", nil)
			if tt.incoming != "" {
				msg.Metadata.Set(marshaler.MetadataCorrelationID, tt.incoming)
			}
			if tt.eventID != "" {
				msg.Metadata.Set(marshaler.MetadataID, tt.eventID)
			}
			var gotCorr, gotCause string
			produced := message.NewMessage("out", nil)
			for k, v := range tt.preset {
				produced.Metadata.Set(k, v)
			}
			out, err := c.Middleware(func(m *message.Message) ([]*message.Message, error) {
				gotCorr, gotCause = envelope.CorrelationID(m.Context()), envelope.CausationID(m.Context())
				rel := marshaler.RelationsFromContext(m.Context())
				assert.Equal(t, marshaler.Relations{CorrelationID: gotCorr, CausationID: gotCause}, rel, "publishers read the same ids")
				return []*message.Message{produced, nil, {UUID: "no-metadata"}}, nil
			})(msg)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCorr, gotCorr)
			assert.Equal(t, tt.wantCause, gotCause)
			assert.Equal(t, tt.wantCorr, msg.Metadata.Get(marshaler.MetadataCorrelationID), "the handled message carries it for outer middleware")
			assert.Equal(t, tt.wantOutCorr, out[0].Metadata.Get(marshaler.MetadataCorrelationID))
			assert.Equal(t, tt.wantOutCaus, out[0].Metadata.Get(marshaler.MetadataCausationID))
			assert.Equal(t, tt.wantCorr, out[2].Metadata.Get(marshaler.MetadataCorrelationID), "nil metadata is initialised")
		})
	}
}

// TestCorrelation_default_is_the_event_id_so_redeliveries_get_the_same_id:
// without NewID, an event without correlation id starts the conversation
// named after itself, so every run of the same message (a redelivery, another
// process) correlates the same way; no random id is made.
func TestCorrelation_default_is_the_event_id_so_redeliveries_get_the_same_id(t *testing.T) {
	tests := []struct {
		name     string
		msg      func() *message.Message // a fresh copy of the same message
		wantCorr string
	}{
		{"event id", func() *message.Message { return delivered("ev-1", testSubject, 3, 1) }, "ev-1"},
		{"message UUID without ce-id", func() *message.Message { return message.NewMessage("uuid-1", nil) }, "uuid-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := middleware.NewCorrelation(middleware.CorrelationConfig{})
			require.NoError(t, err)
			var got []string
			for range 2 {
				msg := tt.msg()
				_, err := c.Middleware(func(m *message.Message) ([]*message.Message, error) {
					got = append(got, envelope.CorrelationID(m.Context()))
					return nil, nil
				})(msg)
				require.NoError(t, err)
				assert.Equal(t, tt.wantCorr, msg.Metadata.Get(marshaler.MetadataCorrelationID))
			}
			assert.Equal(t, []string{tt.wantCorr, tt.wantCorr}, got, "both runs get the same id")
		})
	}
}
