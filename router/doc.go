// Package router is the preconfigured consumer side of jetevents: durable
// JetStream pull consumers (one per handler group), dispatch by event type to
// plain or typed handlers, and the middleware stack (correlation, logging,
// dead-letter, broker-side retry, idempotency, timeout, recovery) in the order
// that makes each of them correct, on top of Watermill's message.Router.
//
//	r, _ := router.New(nc, router.Config{Stream: "AUTH_EVENTS"})
//	g := r.Group("notifications", "auth.user.*")
//	g.On("user.created", onUserCreated)
//	router.Handle(g, "user.role.updated", onRoleUpdated) // data decoded into a struct
//	err := r.Run(ctx) // returns after ctx is cancelled and in-flight work is settled
//
// It sits at the top of the layers of DESIGN.md: it imports middleware,
// jetstream, marshaler and envelope, and nothing imports it but the root
// facade, the examples and the command.
package router
