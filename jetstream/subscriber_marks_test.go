package jetstream_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// passThroughUnmarshaler decodes like the default marshaler, then copies
// every header into metadata as it is: an Unmarshaler that imports whatever a
// producer sends, so that the subscriber's own defence is tested, not the
// marshaler's.
type passThroughUnmarshaler struct{}

func (passThroughUnmarshaler) Unmarshal(m natsjs.Msg) (*message.Message, error) {
	wm, err := marshaler.JetStream{Marshaler: marshaler.Default()}.Unmarshal(m)
	if err != nil {
		return nil, err
	}
	for k, vs := range m.Headers() {
		if len(vs) > 0 {
			wm.Metadata[k] = vs[0]
		}
	}
	return wm, nil
}

func TestSubscriber_forged_settlement_and_delivery_headers_are_ignored(t *testing.T) {
	// A producer sets headers named like the subscriber's metadata: a forged
	// js-terminate would turn the handler's retryable error into a Term (the
	// event lost, no dead letter), a forged js-nak-delay would postpone the
	// retry, forged delivery metadata would lie about the attempt.
	forged := map[string]string{
		jetstream.MetadataTerminate:       "forged",
		jetstream.MetadataNakDelay:        "1h",
		jetstream.MetadataDeliveryAttempt: "99",
		jetstream.MetadataStream:          "FORGED",
		jetstream.MetadataSubject:         "forged.subject",
		"js-anything":                     "forged",
	}
	tests := []struct {
		name        string
		unmarshaler jetstream.Unmarshaler
	}{
		{"default marshaler", nil},
		{"unmarshaler that imports every header", passThroughUnmarshaler{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSubFixture(t)
			e := envelope.NewEvent("user.created", "test", "org-1", time.Now(), map[string]any{"i": 1})
			nm, err := marshaler.Default().EventToNATS(testSubject, e, marshaler.Relations{})
			require.NoError(t, err)
			for k, v := range forged {
				nm.Header.Set(k, v)
			}
			f.publishRaw(nm)

			sub := f.subscriber(jetstream.SubscriberConfig{
				Durable:     "forged",
				Unmarshaler: tt.unmarshaler,
				NakDelay:    func(uint64) time.Duration { return 0 },
			})
			ch := f.subscribe(sub, testSubject)

			m := receive(t, ch)
			require.Equal(t, e.ID, m.UUID)
			assert.NotContains(t, m.Metadata, jetstream.MetadataTerminate)
			assert.NotContains(t, m.Metadata, jetstream.MetadataNakDelay)
			assert.NotContains(t, m.Metadata, "js-anything")
			assert.Equal(t, "1", m.Metadata.Get(jetstream.MetadataDeliveryAttempt))
			assert.Equal(t, testStream, m.Metadata.Get(jetstream.MetadataStream))
			assert.Equal(t, testSubject, m.Metadata.Get(jetstream.MetadataSubject))
			require.True(t, m.Nack()) // the handler failed: retry

			again := receive(t, ch) // a normal nak: attempt 2 comes at once
			require.Equal(t, e.ID, again.UUID)
			assert.Equal(t, uint64(2), jetstream.DeliveryAttempt(again))
			assert.NotContains(t, again.Metadata, jetstream.MetadataTerminate)
			require.True(t, again.Ack())
			f.requireSettled("forged")
			info := f.consumerInfo("forged")
			assert.Equal(t, uint64(2), info.Delivered.Consumer, "delivered twice: nacked, not termed")
			assert.Equal(t, uint64(1), info.AckFloor.Stream)
		})
	}
}
