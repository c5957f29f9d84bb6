// Package inbox gives router handlers exactly-once effects in the service's
// own database: a handler runs inside a transaction that also records
// (consumer group, event id) in an inbox table, so that the handler's writes
// and the record commit together or not at all, and a redelivered event
// whose record committed is acked without running the handler again.
//
//	type UserCreated struct {
//		UserID int    `json:"user_id"`
//		Email  string `json:"email"`
//	}
//
//	// db is the service's database: pgx's stdlib or modernc.org/sqlite.
//	func consume(ctx context.Context, nc *nats.Conn, db *sql.DB) error {
//		in, err := inbox.New(db, inbox.Config{})
//		if err != nil {
//			return err
//		}
//		if err := in.CreateSchema(ctx); err != nil { // or in.Schema() in your migrations
//			return err
//		}
//		r, err := events.NewRouter(nc, events.RouterConfig{Stream: "AUTH_EVENTS"})
//		if err != nil {
//			return err
//		}
//		g := r.Group("projections", "auth.user.>")
//		inbox.Handle(in, g, "user.created", func(ctx context.Context, tx *sql.Tx, e *events.Event, u UserCreated) error {
//			_, err := tx.ExecContext(ctx, "INSERT INTO users (id, email) VALUES ($1, $2)", u.UserID, u.Email)
//			return err // an error retries, events.Permanent dead-letters, both rolled back
//		})
//		return r.Run(ctx)
//	}
//
// Why the router's Idempotency is not enough: it marks an event handled in
// JetStream KV after the handler returned, so a crash between the
// handler's database commit and the mark runs the handler again. Here the
// mark is a row of the handler's own transaction: there is no between.
//
// It composes with the router: retry and dead letters work on the
// handler's error as for any handler; a skipped duplicate is reported as
// the Idempotency skip is (router.ResultSkipped with reason duplicate,
// metrics' outcome="skipped",reason="duplicate", the debug log line); the transaction lives on the
// handler's context, so HandlerTimeout and the close deadline roll it
// back. A handler that publishes through the outbox (package outbox) in
// the same transaction consumes and produces exactly once.
//
// The record's group is the delivering durable (router.DeliveryFrom(ctx).Consumer):
// two groups each handle an event once; a new durable name starts with no
// records (a new durable is a new consumer).
package inbox
