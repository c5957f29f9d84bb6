package transport

import "time"

// Verdict is what becomes of one delivery: decided once, by the step that
// knows (the handler's return, the retry policy, the dead-letter step, the
// idempotency check, the dispatcher), and read by everything after it: the
// settlement, the router's Outcome, metrics, tracing and logs. It is the
// module's one vocabulary of outcomes.
type Verdict struct {
	// Kind is the outcome.
	Kind Outcome
	// Delay is how long the broker waits before redelivering (Retried).
	Delay time.Duration
	// Reason says why: the dead-letter reason (DeadLettered: max_deliver,
	// permanent, unmarshal, ...) or why the handler did not run (Skipped:
	// duplicate, unknown_type).
	Reason string
	// Err is the failure: the handler's error (Retried, DeadLettered).
	Err error
	// DeadLetterSubject is the subject the dead letter was stored on
	// (DeadLettered).
	DeadLetterSubject string
}

// Outcome is the kind of a Verdict. Its String is the label metrics and
// traces use.
type Outcome uint8

// The outcomes of a delivery.
const (
	// Undecided: no step decided yet (the zero Verdict).
	Undecided Outcome = iota
	// Handled: the handler returned nil; the message is acked.
	Handled
	// Retried: the handler failed; the message is nacked and redelivered
	// after Verdict.Delay.
	Retried
	// DeadLettered: the message is stored in the dead-letter stream; it is
	// acked.
	DeadLettered
	// Skipped: the handler did not run (a duplicate, a type no handler
	// takes); the message is acked.
	Skipped
)

// Reasons a handler did not run (Verdict.Reason of Skipped).
const (
	// SkipDuplicate: the event was already handled by the group
	// (idempotency).
	SkipDuplicate = "duplicate"
	// SkipUnknownType: no handler of the group takes the event's type.
	SkipUnknownType = "unknown_type"
)

var outcomeNames = [...]string{Undecided: "undecided", Handled: "handled", Retried: "retried", DeadLettered: "dead_lettered", Skipped: "skipped"}

// String is "handled", "retried", "dead_lettered", "skipped" (or
// "undecided").
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "undecided"
}

// Acks reports whether the verdict settles the message for good (ack).
func (v Verdict) Acks() bool { return v.Kind == Handled || v.Kind == DeadLettered || v.Kind == Skipped }

// Retry returns the verdict "redeliver after delay", for err.
func Retry(delay time.Duration, err error) Verdict {
	return Verdict{Kind: Retried, Delay: max(delay, 0), Err: err}
}

// DeadLetter returns the verdict "stored in the dead-letter stream" with
// its reason and cause.
func DeadLetter(reason string, err error) Verdict {
	return Verdict{Kind: DeadLettered, Reason: reason, Err: err}
}

// Skip returns the verdict "acked without running the handler", with why.
func Skip(reason string) Verdict { return Verdict{Kind: Skipped, Reason: reason} }
