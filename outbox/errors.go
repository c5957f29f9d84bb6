package outbox

import "errors"

// Errors of the outbox. Publish also returns the envelope's sentinels
// (envelope.ErrInvalidSubject, ErrInvalidEvent, ErrTooLarge: nothing was
// written) and the database's own error, wrapped.
var (

	// ErrNoTransaction: Publish without a transaction. An outbox row is
	// only worth writing inside the transaction of the change it announces.
	ErrNoTransaction = errors.New("outbox: no transaction")

	// ErrNoSchema: the outbox table (or the SQLite relay's lease table)
	// does not exist. Call Outbox.CreateSchema, or run the SQL of
	// Outbox.Schema in your migrations.
	ErrNoSchema = errors.New("outbox: schema missing")

	// ErrInvalidRow: a stored row cannot be published (its payload is not
	// an envelope, e.g. written by hand). The relay holds its subject (the
	// rows behind it wait, in order) and retries it with backoff; fix or
	// delete the row.
	ErrInvalidRow = errors.New("outbox: row cannot be published")

	// ErrRelayRunning: Run called on a Relay that is already running.
	ErrRelayRunning = errors.New("outbox: relay already running")

	// ErrLeaseLost: a SQLite relay found, when marking its batch, that its
	// lease had passed to another relay. The batch's rows stay and are
	// published again by the holder (the stream drops the copies inside
	// its duplicates window).
	ErrLeaseLost = errors.New("outbox: relay lease lost")
)
