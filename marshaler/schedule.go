package marshaler

import (
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Headers the server sets on each event a message schedule stores (ADR-51):
// the subject holding the schedule, and when it fires next ("purge" for a
// one-shot schedule, which the server then removes).
const (
	HeaderScheduler    = "Nats-Scheduler"
	HeaderScheduleNext = "Nats-Schedule-Next"
)

// occurrenceNamespace is the UUID namespace of OccurrenceID (a fixed
// random UUID: occurrence ids never collide with ids made elsewhere).
var occurrenceNamespace = uuid.MustParse("6f1c1a4e-9b52-4f0e-8d3a-2c7e5b9a1d40")

// OccurrenceID is the id of one occurrence of a recurring schedule of the
// event id: a version 5 UUID of id and next, the occurrence's
// Nats-Schedule-Next header (the time the schedule fires after it, which
// differs for every occurrence). The server copies the scheduled event
// verbatim each time it fires, so every occurrence would otherwise carry
// the same id, and an idempotent handler (middleware.Idempotency) would run
// the first one only. Two copies of one occurrence (the server firing it
// again after a failover) get the same id, so they are still de-duplicated.
func OccurrenceID(id, next string) string {
	return uuid.NewSHA1(occurrenceNamespace, []byte(id+"\n"+next)).String()
}

// occurrenceNext is the Nats-Schedule-Next header of an event stored by a
// recurring schedule, "" for any other message (a one-shot schedule's
// event keeps its id).
func occurrenceNext(h nats.Header) string {
	if len(h[HeaderScheduler]) == 0 {
		return ""
	}
	next := h[HeaderScheduleNext]
	if len(next) == 0 || next[0] == "" || next[0] == "purge" {
		return ""
	}
	return next[0]
}
