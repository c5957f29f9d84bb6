package marshaler

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
)

// eventMetadataCount is the number of metadata keys setEventMetadata (8) and
// SetRelations (2) write at most.
const eventMetadataCount = 10

// ToMessage turns an event into a Watermill message: UUID = event id,
// payload = the envelope's JSON, metadata = the attributes under the Metadata*
// keys. The event is validated first (with Config.MaxSize); errors match
// envelope.ErrInvalidEvent and the rule's sentinel. Relations are not part of
// the event: add them with SetRelations (or let Marshal read them from the
// message's context).
func (m *Marshaler) ToMessage(e *envelope.Event) (*message.Message, error) {
	payload, err := e.Encode(m.cfg.MaxSize)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(e.ID, payload)
	// At most 8 keys: the map NewMessage made holds them without growing.
	setEventMetadata(msg.Metadata, e, "")
	return msg, nil
}

// setEventMetadata mirrors e's attributes into md. They are informational
// (routing, logging, watermill middleware): the payload stays authoritative.
// ts is e's timestamp already formatted, or "" to format it here.
func setEventMetadata(md message.Metadata, e *envelope.Event, ts string) {
	if ts == "" {
		ts = envelope.FormatTime(e.Timestamp)
	}
	md[MetadataSpecVersion] = SpecVersion
	md[MetadataID] = e.ID
	md[MetadataType] = e.Type
	md[MetadataSource] = e.Source
	md[MetadataTime] = ts
	if e.OrganizationID != "" {
		md[MetadataOrganization] = e.OrganizationID
	}
	md[MetadataSchemaVersion] = e.SchemaVersion
	md[MetadataContentType] = ContentTypeJSON
}

// FromMessage decodes the event carried by a Watermill message's payload (as
// made by ToMessage, DecodeNATS or the NATS/JetStream unmarshalers); the
// metadata is not read. The event is validated (Config.MaxSize) and its schema
// major checked against Config.SchemaMajors. Errors match ErrUnmarshal and a
// specific sentinel (envelope.ErrMalformed, envelope.ErrTooLarge, envelope.ErrInvalidEvent,
// ErrUnknownSchemaMajor). The event's Data aliases msg.Payload.
func (m *Marshaler) FromMessage(msg *message.Message) (*envelope.Event, error) {
	e, err := envelope.Decode(msg.Payload, m.cfg.MaxSize)
	if err == nil {
		err = m.checkMajor(e)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: message %s: %w", ErrUnmarshal, msg.UUID, err)
	}
	return e, nil
}

// RelationsFromMessage returns the relations a Watermill message carries in
// its metadata: the correlation id under correlation_id (Watermill's key, set
// by its CorrelationID middleware) or else ce-correlationid, the causation id
// under ce-causationid.
func RelationsFromMessage(msg *message.Message) Relations {
	rel := Relations{
		CorrelationID: msg.Metadata.Get(MetadataCorrelationID),
		CausationID:   msg.Metadata.Get(MetadataCausationID),
	}
	if rel.CorrelationID == "" {
		rel.CorrelationID = msg.Metadata.Get(HeaderCorrelationID)
	}
	return rel
}

// SetRelations stores the non-empty relations in msg's metadata, where
// RelationsFromMessage and Marshal read them.
func SetRelations(msg *message.Message, rel Relations) {
	if rel.CorrelationID != "" {
		msg.Metadata.Set(MetadataCorrelationID, rel.CorrelationID)
	}
	if rel.CausationID != "" {
		msg.Metadata.Set(MetadataCausationID, rel.CausationID)
	}
}
