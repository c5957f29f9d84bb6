// Package router is the preconfigured consumer side of jetevents: durable
// consumers (one per handler group), dispatch by event type to plain or typed
// handlers, and the middleware stack (correlation, logging, dead-letter,
// broker-side retry, user middleware, idempotency, timeout, recovery) in the
// order that makes each of them correct.
//
//	type RoleUpdated struct {
//		UserID  int    `json:"user_id"`
//		NewRole string `json:"new_role"`
//	}
//	r, _ := router.New(nc, router.Config{Stream: "AUTH_EVENTS"})
//	g := r.Group("notifications", "auth.user.>") // '>' also takes auth.user.role.updated
//	g.On("user.created", func(ctx context.Context, e *envelope.Event) error {
//		return nil // handled: acked; an error: redelivered after the backoff
//	})
//	router.Handle(g, "user.role.updated", func(ctx context.Context, e *envelope.Event, u RoleUpdated) error {
//		return nil // u: the event's data, decoded
//	})
//	err := r.Run(ctx) // returns after ctx is cancelled and in-flight work is settled
//
// Each group runs as one pipeline on the transport seam (package transport):
// the transport delivers under credit into the group's queue, and each of
// Concurrency workers takes a message through decode (once) -> middleware ->
// handler -> settle on its own goroutine. Every held message is leased until
// settled; a stalled pull is detected by its heartbeats and recovered; the
// attempt limit is enforced here, from the delivery count, before the handler
// runs. Watermill's message.Message and HandlerMiddleware types are kept, so
// Watermill middleware composes (Config.Middleware). New runs on JetStream
// (jetstream.Transport); NewWithTransport on any transport.
//
// It sits at the top of the layers: it imports middleware, transport,
// jetstream, marshaler and envelope, and nothing imports it but the root
// facade, the examples and the command.
package router
