package inbox

import "errors"

// Errors of the inbox. A handler's own error is returned as it is (wrapped
// by nothing), so that events.Permanent and the router's retry work on it.
var (

	// ErrNoDelivery: the handler was called outside a router handler: there
	// is no consumer group to record the event under.
	ErrNoDelivery = errors.New("inbox: no router delivery in the context")

	// ErrRecord: the inbox record could not be written or the transaction
	// could not begin: the event is retried like any handler error.
	ErrRecord = errors.New("inbox: record")

	// ErrCommit: the handler returned nil but its transaction did not
	// commit; nothing of it happened, and the event is retried.
	ErrCommit = errors.New("inbox: commit")

	// ErrNoSchema: the inbox table does not exist. Call CreateSchema, or
	// run the SQL of Schema in your migrations.
	ErrNoSchema = errors.New("inbox: schema missing")
)
