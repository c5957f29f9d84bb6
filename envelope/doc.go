// Package envelope holds the event envelope that every jetevents event travels in:
// the Event type, its constructors, its validation rules and its JSON encoding,
// plus the Clock abstraction (the TimeManager of the seed examples).
//
// The JSON form is the wire contract of the whole library and is exactly:
//
//	{
//	  "id": "550e8400-e29b-41d4-a716-446655440000",
//	  "type": "user.created",
//	  "source": "auth-service",
//	  "organization_id": "org-123",
//	  "timestamp": "2024-01-15T10:30:45Z",
//	  "schema_version": "1.0",
//	  "data": {"user_id": 12345, "email": "user@example.com", "role": "admin"}
//	}
//
// The package is the bottom layer (the README's package map): it imports no other package of
// this module and knows nothing about NATS or Watermill.
package envelope
