package marshaler

import (
	"fmt"

	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream adapts a Marshaler to watermill-nats' pkg/jetstream Unmarshaler
// (and to this module's jetstream subscriber, which takes the same interface).
type JetStream struct{ *Marshaler }

var _ wmjs.Unmarshaler = JetStream{}

// Unmarshal decodes a JetStream message like NATS.Unmarshal does. It neither
// acks nor naks: settling the message is the subscriber's business.
func (j JetStream) Unmarshal(msg jetstream.Msg) (*message.Message, error) {
	wm, _, err := j.DecodeNATS(msg.Headers(), msg.Data())
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", msg.Subject(), err)
	}
	return wm, nil
}
