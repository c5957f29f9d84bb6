package events

import (
	"time"

	"github.com/jetevents/events/transport"
)

// PublishOption changes one publish: At, After, Cron, Every, InTimeZone,
// TTL, ExpectLastSequence. The JetStream publisher, the memory bus's
// publisher and PublisherMock take the same values (transport.PublishOption).
type PublishOption = transport.PublishOption

// At delivers the event at t instead of now, with its id unchanged: the
// stream holds it as a message schedule until then (README: "Scheduled and
// delayed events"). The stream must allow schedules
// (jetstream.StreamSpec.AllowMsgSchedules); cancel with CancelSchedule.
func At(t time.Time) PublishOption { return transport.At(t) }

// After delivers the event d from now (the publisher's clock).
func After(d time.Duration) PublishOption { return transport.After(d) }

// Cron stores the event on subject on a recurring schedule: six fields
// ("0 30 9 * * mon-fri") or @daily, @hourly, ... (UTC unless InTimeZone).
// Each occurrence is an event of its own (see transport.Cron).
func Cron(expr string) PublishOption { return transport.Cron(expr) }

// Every stores the event on subject every d (at least 1s).
func Every(d time.Duration) PublishOption { return transport.Every(d) }

// InTimeZone reads a Cron schedule in an IANA time zone ("Europe/Paris").
func InTimeZone(name string) PublishOption { return transport.InTimeZone(name) }

// TTL removes the stored event d after it was stored: a consumer that has
// not received it by then never will. The stream must allow it
// (jetstream.StreamSpec.AllowMsgTTL).
func TTL(d time.Duration) PublishOption { return transport.TTL(d) }

// ExpectLastSequence stores the publish (or the atomic batch) only if the
// last message on subject (wildcards allowed) still has sequence seq (0:
// none); else nothing is stored and the error is a *ConflictError.
func ExpectLastSequence(subject string, seq uint64) PublishOption {
	return transport.ExpectLastSequence(subject, seq)
}

// ConflictError is an ExpectLastSequence that did not hold: it carries the
// subject, the expected and the current sequence, and matches ErrConflict.
type ConflictError = transport.ConflictError
