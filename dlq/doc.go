// Package dlq reads, replays and purges the dead letters of a dead-letter
// stream: what `jetevents dlq` and the web console (package console) both
// do, written once.
//
// A dead letter is the original message, payload and headers, published by
// middleware.DeadLetterer on dlq.<original subject> with the Dlq-* headers
// (middleware.HeaderReason, HeaderError, HeaderSubject, ...). A Queue is one
// dead-letter stream, opened with Open:
//
//   - List returns one page of dead letters, oldest first, starting at a
//     stream sequence (Page.Next starts the next page). Nothing but the page
//     is held: the stream is read with the message-get API, one message at
//     a time, and a filter on headers (reason, handler, type, organization,
//     text) examines at most PageRequest.ScanLimit messages per page,
//     streamed through an ephemeral consumer (in memory, no acks, deleted
//     after; one message at a time when the user may not create one), so
//     a stream of 100,000 dead letters is never loaded at once.
//   - Get and Show read one; Scan visits every match.
//   - Replay publishes the original again on its original subject (now, or
//     at a time as a message schedule of its original stream), then deletes
//     the dead letter; ReplayMessage is the message it publishes, and says
//     which headers are restored and why.
//   - Purge removes the dead letters on a subject; Delete removes one.
//
// Reading never acks and creates no durable: a Queue changes the stream
// only in Replay, Purge and Delete.
//
// Layers (the README's package map): it reads the headers of package
// middleware, decodes with package marshaler, schedules with the options of
// package transport, and talks to the server through nats.go's jetstream
// package; cmd/jetevents and package console import it.
package dlq
