// Package marshaler is the wire contract of jetevents: it maps an
// envelope.Event onto a Watermill message and a Watermill message onto a NATS
// message (payload and headers), and back.
//
// Three content modes are read (DecodeNATS says how one is chosen):
//   - ours (default, also written): the payload is the envelope's JSON and the
//     ce-* headers mirror its attributes (they must agree with it);
//   - CloudEvents binary: the payload is the event's data, the attributes are
//     ce-* headers;
//   - CloudEvents structured: Content-Type application/cloudevents+json, the
//     whole CloudEvent in the payload.
//
// Whatever the mode read, the Watermill message it yields is the same: UUID =
// event id, payload = the envelope's JSON, metadata = the attributes under the
// Metadata* keys. Every decode failure is an error matching ErrUnmarshal and a
// more specific sentinel, never a panic; fuzz targets cover every decode path.
//
// Header values of ce-* attributes are percent-encoded as the CloudEvents
// bindings require (space, '"', '%' and every byte outside printable ASCII).
//
// Adapters: NATS implements watermill-nats' pkg/nats MarshalerUnmarshaler,
// JetStream its pkg/jetstream Unmarshaler, and CQRS watermill's
// cqrs.CommandEventMarshaler (without importing watermill's cqrs package, so
// that programs that do not use it do not link its protobuf dependencies).
//
// The package sits between envelope (below) and jetstream/router (above).
package marshaler
