// Package outbox makes an event part of the service's own database
// transaction (the transactional outbox): Publish writes the event into an
// outbox table inside the caller's *sql.Tx, so that the event exists if and
// only if the transaction commits, and a Relay publishes the committed rows
// to JetStream with Nats-Msg-Id = event id, then deletes them.
//
// It replaces the dual write (store, then publish): a process that dies
// between the two, or a publish that fails after the commit, loses the
// event; a transaction that rolls back after a publish leaves a false one.
//
//	// db is the service's database: pgx's stdlib or modernc.org/sqlite.
//	func createResource(ctx context.Context, db *sql.DB, ob *outbox.Outbox, e *events.Event) error {
//		tx, err := db.BeginTx(ctx, nil)
//		if err != nil {
//			return err
//		}
//		defer tx.Rollback()
//		// ... the business writes in tx ...
//		if err := ob.Publish(ctx, tx, "my-service.resource.created", e); err != nil { // or ob.Publisher(tx): an events.Publisher
//			return err
//		}
//		return tx.Commit()
//	}
//
//	func relay(ctx context.Context, db *sql.DB, nc *nats.Conn) error {
//		ob, err := outbox.New(db, outbox.Config{})
//		if err != nil {
//			return err
//		}
//		if err := ob.CreateSchema(ctx); err != nil { // or ob.Schema() in your migrations
//			return err
//		}
//		pub, err := events.NewPublisher(nc)
//		if err != nil {
//			return err
//		}
//		relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{})
//		if err != nil {
//			return err
//		}
//		return relay.Run(ctx)
//	}
//
// # Guarantees
//
// Every committed row is stored by the stream at least once, and, inside
// the stream's duplicates window, exactly once. Events of one subject are
// stored in the order their transactions committed; events of different
// subjects in no particular order. A rolled-back transaction's events are
// never published.
//
// Commit order, not insert order. An id drawn from a sequence is assigned
// when the row is inserted, not when it commits: two transactions can
// commit in the other order than their ids, and a relay reading by id would
// publish them against commit order. On PostgreSQL, Publish takes a
// transaction-scoped advisory lock on (table, subject) before inserting, so
// that on one subject the next row is only inserted after the previous
// transaction ended: per subject, id order is commit order, and a relay
// that sees a row sees every earlier one of its subject. On SQLite write
// transactions commit one at a time, so id order is commit order already.
//
// Several relays at once are safe and keep that order: on PostgreSQL a
// batch try-locks its subjects (pg_try_advisory_xact_lock; another relay
// skips them, and takes others), reads their rows, publishes, deletes and
// commits; a crashed relay's locks die with its connection. On SQLite one
// relay holds a lease row and the others stand by. Within a subject, the
// relay publishes a row only once the previous one is stored, so that a
// failure (the server down, no stream for the subject) never lets a later
// row in before it: the subject waits, retried with backoff, and the other
// subjects flow.
//
// # The duplicates window
//
// A relay that dies after the stream stored a row and before deleting it
// leaves the row; the next relay publishes it again and the stream drops
// the copy if it arrives within its duplicates window (StreamSpec.Duplicates,
// 2 minutes by default). Past the window (every relay down longer than
// that, or a nats.go reconnect buffer flushed after it), the stream stores a
// second copy: consumers see a duplicate, which the inbox (package inbox)
// or router.Config.Idempotency absorbs. RelayConfig.Validate keeps the
// relay's own re-publish delays (lease, publish timeout) well inside the
// window.
//
// In the README's package map it sits beside the root facade: it imports
// envelope, marshaler, jetstream, middleware, transport and pgx (for LISTEN
// only: importing the package registers no database driver), and nothing
// of the core imports it.
package outbox
