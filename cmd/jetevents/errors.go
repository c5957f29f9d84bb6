package main

import "errors"

// Errors of the command. run returns them wrapped with context (%w), so tests
// and callers match them with errors.Is; main prints the message and exits 2
// for errUsage, 1 for the others.
var (
	// errUsage marks a command line that could not be understood.
	errUsage = errors.New("usage")

	// errRefused: a destructive command was not confirmed (dlq purge
	// without -yes). What it would have done is printed first.
	errRefused = errors.New("refused")

	// errNotDeadLetter: a message of the dead-letter stream lacks the
	// headers a replay needs (Dlq-Original-Subject).
	errNotDeadLetter = errors.New("not a dead letter")

	// errDeduplicated: a replay with -original-msg-id was dropped by the
	// target stream as a duplicate (the original Nats-Msg-Id is still inside
	// the stream's duplicates window). Nothing was stored; the dead letter is
	// kept.
	errDeduplicated = errors.New("replay de-duplicated by the stream")

	// errServer: the server answered a request with an error.
	errServer = errors.New("server error")
)
