package marshaler

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
)

// ToMessage turns a validated event into a Watermill message: UUID = event id,
// payload = the envelope's JSON, metadata = the attributes under the Metadata*
// keys. The event is validated first; errors match envelope.ErrInvalidEvent.
func (m *Marshaler) ToMessage(e *envelope.Event) (*message.Message, error) {
	if err := e.ValidateSize(m.cfg.MaxSize); err != nil {
		return nil, err
	}
	msg := message.NewMessage(e.ID, e.AppendJSON(make([]byte, 0, e.EncodedLen())))
	setEventMetadata(msg.Metadata, e)
	return msg, nil
}

func setEventMetadata(md message.Metadata, e *envelope.Event) {
	md[MetadataSpecVersion] = SpecVersion
	md[MetadataID] = e.ID
	md[MetadataType] = e.Type
	md[MetadataSource] = e.Source
	md[MetadataTime] = envelope.FormatTime(e.Timestamp)
	if e.OrganizationID != "" {
		md[MetadataOrganization] = e.OrganizationID
	}
	md[MetadataSchemaVersion] = e.SchemaVersion
	md[MetadataContentType] = ContentTypeJSON
}

// FromMessage decodes the event carried by a Watermill message (as made by
// ToMessage or by the NATS/JetStream unmarshalers). Errors match ErrUnmarshal.
func (m *Marshaler) FromMessage(msg *message.Message) (*envelope.Event, error) {
	e, err := m.decodeEnvelope(msg.Payload)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	return e, nil
}

// decodeEnvelope decodes and checks a payload in our content mode.
func (m *Marshaler) decodeEnvelope(payload []byte) (*envelope.Event, error) {
	e, err := envelope.Decode(payload, m.cfg.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	if err := m.checkMajor(e); err != nil {
		return nil, err
	}
	return e, nil
}

func (m *Marshaler) checkMajor(e *envelope.Event) error {
	major, err := e.SchemaMajor()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnmarshal, err)
	}
	if !m.acceptsMajor(major) {
		return fmt.Errorf("%w: %w: %q (accepted majors %v)", ErrUnmarshal, ErrUnknownSchemaMajor, e.SchemaVersion, m.cfg.SchemaMajors)
	}
	return nil
}
