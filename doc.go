// Package events makes NATS JetStream the event backbone of Go services, as a
// Watermill plugin. This root package is a thin facade: aliases and
// constructors over the subpackages, so that service code reads as the seed
// examples do:
//
//	clock := events.SystemClock{} // the seed's TimeManager
//	event := events.NewEvent("user.created", "auth-service", "org-123", clock.Now(),
//		map[string]interface{}{"user_id": 12345, "email": "user@example.com"})
//	publisher, err := events.NewPublisher(nc)
//	err = publisher.Publish(ctx, "auth.user.created", event)
//
// The real code lives in envelope (the Event), marshaler (the wire contract),
// jetstream (connection, streams, publisher, subscriber), middleware and
// router. The facade holds no logic of its own.
package events
