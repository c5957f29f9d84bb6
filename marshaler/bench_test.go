package marshaler_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// The benchmarks put our paths beside watermill-nats' NATSMarshaler on the
// same Watermill message (payload = the envelope JSON, metadata = ours), for
// event data of 512 B and 4 KiB. Run them with
//
//	go test -run='^$' -bench=. -benchmem -count=6 ./marshaler/

var benchSizes = []struct {
	name string
	size int
}{{"512B", 512}, {"4KiB", 4096}}

// benchData returns a JSON object of exactly n bytes that looks like event data.
func benchData(n int) json.RawMessage {
	head := `{"user_id":12345,"email":"user@example.com","role":"admin","note":"`
	tail := `"}`
	fill := n - len(head) - len(tail)
	const words = "lorem ipsum dolor sit amet consectetur adipiscing elit "
	return json.RawMessage(head + strings.Repeat(words, fill/len(words)+1)[:fill] + tail)
}

func benchEvent(b *testing.B, size int) *envelope.Event {
	b.Helper()
	e := &envelope.Event{
		ID:             "550e8400-e29b-41d4-a716-446655440000",
		Type:           "user.created",
		Source:         "auth-service",
		OrganizationID: "org-123",
		Timestamp:      time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC),
		SchemaVersion:  "1.0",
		Data:           benchData(size),
	}
	if err := e.Validate(); err != nil {
		b.Fatal(err)
	}
	return e
}

var rel = marshaler.Relations{CorrelationID: "7d2c3e8e-5a47-4a8f-9d0e-2f6c4b1a9e11", CausationID: "0b9f4c61-1a0e-4f5a-8a57-3c8d2e6f7a10"}

func BenchmarkMarshal(b *testing.B) {
	m := marshaler.Default()
	for _, sz := range benchSizes {
		e := benchEvent(b, sz.size)
		wm, err := m.ToMessage(e)
		if err != nil {
			b.Fatal(err)
		}
		wm.Metadata.Set(marshaler.MetadataCorrelationID, rel.CorrelationID)
		wm.Metadata.Set(marshaler.MetadataCausationID, rel.CausationID)

		b.Run("EventToNATS/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wm.Payload)))
			for b.Loop() {
				if _, err := m.EventToNATS("auth.user.created", e, rel); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("ToMessage/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wm.Payload)))
			for b.Loop() {
				if _, err := m.ToMessage(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Marshal/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wm.Payload)))
			for b.Loop() {
				if _, err := m.Marshal("auth.user.created", wm); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("watermill-nats/"+sz.name, func(b *testing.B) {
			wn := &wmnats.NATSMarshaler{}
			b.ReportAllocs()
			b.SetBytes(int64(len(wm.Payload)))
			for b.Loop() {
				if _, err := wn.Marshal("auth.user.created", wm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	m := marshaler.Default()
	for _, sz := range benchSizes {
		e := benchEvent(b, sz.size)
		nm, err := m.EventToNATS("auth.user.created", e, rel)
		if err != nil {
			b.Fatal(err)
		}
		wm, err := m.ToMessage(e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("DecodeNATS/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(nm.Data)))
			for b.Loop() {
				if _, _, err := m.DecodeNATS(nm.Header, nm.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("FromMessage/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wm.Payload)))
			for b.Loop() {
				if _, err := m.FromMessage(wm); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Unmarshal/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(nm.Data)))
			for b.Loop() {
				if _, err := m.Unmarshal(nm); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("watermill-nats/"+sz.name, func(b *testing.B) {
			wn := &wmnats.NATSMarshaler{}
			wnm, err := wn.Marshal("auth.user.created", wm)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(wnm.Data)))
			for b.Loop() {
				if _, err := wn.Unmarshal(wnm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
