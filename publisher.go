package events

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

// Publisher is what services depend on to publish events; *jetstream.Publisher
// (from NewPublisher) implements it, and so does PublisherMock for unit tests.
type Publisher interface {
	// Publish sends the event on subject and returns once the stream stored
	// it, or with a typed error (ErrNoStream, ErrTimeout, ErrInvalidEvent, ...).
	// Options deliver it later (At, After), on a recurring schedule (Cron,
	// Every), with a time to live (TTL), or only if a subject's last
	// sequence is still the one read (ExpectLastSequence).
	Publish(ctx context.Context, subject string, event *Event, opts ...PublishOption) error
	// PublishAsync queues the event and returns; a failed ack reaches the
	// publisher's async error handler. Close waits for pending acks. It
	// takes Publish's options.
	PublishAsync(ctx context.Context, subject string, event *Event, opts ...PublishOption) error
	// CancelSchedule removes the pending schedule of the event eventID
	// published on subject with At, After, Cron or Every; ErrScheduleNotFound
	// when there is none (it fired, was cancelled, or never existed).
	CancelSchedule(ctx context.Context, subject, eventID string) error
	// Close waits for pending async publishes (within a deadline) and makes
	// later publishes fail with ErrClosed. It never closes the connection.
	Close() error
}

var _ Publisher = (*jetstream.Publisher)(nil)

// AtomicPublisher stores a batch of events all or none (README: "Atomic
// batches"); *jetstream.Publisher, the memory bus's publisher and
// PublisherMock implement it.
type AtomicPublisher interface {
	// PublishAtomic stores every event of batch, in order, at contiguous
	// sequences of one stream, or none of them. With ExpectLastSequence it
	// stores them only if nobody wrote to the subject since (else a
	// *ConflictError).
	PublishAtomic(ctx context.Context, batch []AtomicEvent, opts ...PublishOption) (AtomicAck, error)
}

var _ AtomicPublisher = (*jetstream.Publisher)(nil)

// AtomicEvent is one event of an atomic batch and its subject.
type AtomicEvent = transport.AtomicEvent

// AtomicAck confirms a committed atomic batch: the stream and the
// contiguous sequences its events were stored at.
type AtomicAck = transport.AtomicAck

// NewPublisher returns a JetStream publisher on nc, which it never closes.
// The result also has PublishBatch, PublishAtomic, CancelSchedule,
// PublishAck, Flush and Stats. A jetstream.PublisherConfig, when given (at
// most one), sets MaxPending, OnAsyncError, PublishTimeout, Logger, ...;
// every zero field takes its documented default.
func NewPublisher(nc *nats.Conn, config ...jetstream.PublisherConfig) (*jetstream.Publisher, error) {
	return jetstream.NewPublisher(nc, config...)
}

// Connect dials NATS with production defaults (reconnect forever with
// backoff and jitter, logged connection events). See jetstream.Connect.
func Connect(url string, opts ...jetstream.ConnectOption) (*nats.Conn, error) {
	return jetstream.Connect(url, opts...)
}

// WithName sets the connection's client name. See jetstream.WithName.
func WithName(name string) jetstream.ConnectOption { return jetstream.WithName(name) }
