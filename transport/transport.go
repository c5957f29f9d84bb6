package transport

import (
	"context"
	"time"
)

// Transport is what the router runs on: durable consumers that deliver
// messages under credit, and a dead-letter publish. jetstream.Transport is
// the production implementation, memory.Bus the one for tests.
type Transport interface {
	// Consume binds the durable consumer of spec (creating it when it does
	// not exist) and starts delivering its messages to sink, never more than
	// the credit given with Consumer.Credit (none at first). sink is called
	// from one goroutine at a time and must not block. A setup failure is
	// returned at once; a failure later ends the Consumer (Done, Err).
	Consume(ctx context.Context, spec ConsumerSpec, sink func(*Delivery)) (Consumer, error)
	// PublishDeadLetter stores msg in the dead-letter stream and returns once
	// the broker confirmed it. A second publish with the same msg.ID is a
	// success that stores nothing new. Errors match ErrDeadLetter.
	PublishDeadLetter(ctx context.Context, msg *Message) error
	// MaxPayload is the largest message (headers and data) the broker
	// accepts, in bytes.
	MaxPayload() int
}

// Consumer is one bound durable consumer delivering to a sink.
type Consumer interface {
	// Credit allows n more deliveries (one per message the router settled,
	// or its initial capacity).
	Credit(n int)
	// Done is closed when the consumer ended for good: Stop was called, or
	// it could not be recovered (Err says why).
	Done() <-chan struct{}
	// Err is nil after Stop, else why the consumer ended (matches
	// ErrConsumerEnded).
	Err() error
	// Stop ends delivery: once it returns nothing more reaches the sink, and
	// messages that arrive meanwhile are handed back to the broker at once
	// (an Exclusive consumer delivers to the sink until the requests it
	// sent have ended, so that nothing is on its way when it hands over). Messages
	// already delivered stay settleable. Stop waits for the consumer's
	// goroutines and is idempotent.
	Stop()
	// State reads the consumer's state from the broker.
	State(ctx context.Context) (ConsumerState, error)
}

// StartPosition is where a new durable consumer starts in its stream. An
// existing durable keeps its position.
type StartPosition int

const (
	// StartAll delivers every message the stream holds (the default).
	StartAll StartPosition = iota
	// StartNew delivers only messages stored after the consumer was created.
	StartNew
	// StartAtSequence starts at ConsumerSpec.StartSeq.
	StartAtSequence
	// StartAtTime starts at the first message stored at or after
	// ConsumerSpec.StartTime.
	StartAtTime
)

// ConsumerSpec is a durable consumer as a router group owns it.
type ConsumerSpec struct {
	// Stream and Durable name the consumer.
	Stream, Durable string
	// FilterSubjects are the subjects it delivers.
	FilterSubjects []string
	// AckWait is how long the broker waits for a settlement or a lease
	// renewal before redelivering.
	AckWait time.Duration
	// MaxAckPending caps the messages delivered and not settled, across
	// every process bound to the consumer (-1: no cap).
	MaxAckPending int
	// Start, StartSeq and StartTime place a new consumer.
	Start     StartPosition
	StartSeq  uint64
	StartTime time.Time
	// Description is stored with the consumer.
	Description string
	// OnStatus, when set, is told when delivery stalls and recovers.
	OnStatus func(Status)
	// Exclusive makes one consumer at a time receive the durable's
	// messages, whichever processes are bound to it: the others wait,
	// receiving nothing, until it hands over (Handover) or stops pulling
	// for the transport's takeover time (a crashed process). A partition
	// of a partitioned group (JetStream: a pinned priority group, ADR-42).
	// The takeover time is longer than AckWait: a crashed consumer's
	// messages are due for redelivery before another consumer may
	// receive anything, so that nothing overtakes them.
	Exclusive bool
}

// Handover is implemented by the Consumer of an Exclusive spec. Called
// once the consumer stopped and every message it delivered was settled or
// released, it lets the next consumer receive at once instead of after the
// takeover time. It hands nothing over while a message it delivered is
// still pending at the broker (one lost on its way when the consumer
// stopped): the takeover time then applies, so that nothing overtakes it.
type Handover interface {
	Handover(ctx context.Context) error
}

// Membership keeps sets of live members (the processes of a partitioned
// group), each listed until its last Beat is MemberTTL old: JetStream keeps
// them in a KV bucket whose entries expire, the memory bus in memory on its
// clock.
type Membership interface {
	// MemberTTL is how long a member stays listed after its last Beat.
	MemberTTL() time.Duration
	// Beat lists member in set (again) with info, for MemberTTL.
	Beat(ctx context.Context, set, member string, info []byte) error
	// Members lists the live members of set with their info.
	Members(ctx context.Context, set string) (map[string][]byte, error)
	// Leave removes member from set at once.
	Leave(ctx context.Context, set, member string) error
}

// Status is a change of a consumer's health.
type Status struct {
	// State is the new state.
	State State
	// Err is why (nil for StateActive).
	Err error
}

// State is the health of a consumer.
type State string

// Consumer states, reported to ConsumerSpec.OnStatus.
const (
	// StateActive: pulling and receiving heartbeats or messages.
	StateActive State = "active"
	// StateStalled: the broker stopped answering the consumer's pulls (a
	// lost pull request, a leader change, a restart); recovery is under way.
	StateStalled State = "stalled"
	// StateEnded: the consumer ended and cannot be recovered.
	StateEnded State = "ended"
	// StateStopping: the router is shutting the group down (intake
	// stopped, in-flight handlers finishing): not ready.
	StateStopping State = "stopping"
)

// ConsumerState is a consumer's state as the broker reports it.
type ConsumerState struct {
	// Pending: messages in the consumer's filter not yet delivered.
	Pending uint64
	// AckPending: delivered and not yet settled.
	AckPending int
	// Redelivered: delivered more than once and not yet settled.
	Redelivered int
	// Waiting: pull requests waiting at the broker.
	Waiting int
	// LastActive: the last delivery time, zero if never.
	LastActive time.Time
	// PausedUntil is when a paused durable delivers again by itself (see
	// Pauser); zero when it is not paused.
	PausedUntil time.Time
}

// Message is a dead letter to publish.
type Message struct {
	Subject string
	Header  map[string][]string
	Data    []byte
	// ID de-duplicates publishes of the same dead letter.
	ID string
}
