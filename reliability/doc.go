// Package reliability holds the crash suite of jetevents (`make
// reliability`): real nats-server processes (eventstest.NewCluster) and
// router processes (this test binary re-executed) SIGKILLed and restarted
// under load while events flow through the public API
// (jetstream.Publisher, router.Router), counted per event id. The
// scenarios: a server killed 3 times (sync_interval always asserted, lazy
// fsync reported); a router process killed 3 times mid-batch; the stream
// and the consumer leader of an R3 cluster killed; 3 router processes on
// one durable, then one of them killed; poison events under load; a soak
// at a steady rate with RSS and goroutines sampled; 10,000 message
// schedules 1-30 s ahead (some cancelled) on one server and on an R3
// cluster whose stream leader is killed before they fire (never early, each
// once, cancelled never, lateness printed); the outbox (service processes
// writing rows and events in one transaction and relaying them, killed 5
// times, the server once, on PostgreSQL and SQLite) and the inbox (router
// processes whose handler inserts a row per event, killed 5 times, the
// server once; the same run without the inbox reported). Each prints one row of
// a table (scenario, events, acked, lost, duplicates, dead-lettered,
// longest time without progress) and asserts on it.
//
// The tests are behind the build tag "reliability", so `go test ./...`
// does not run them. -short runs reduced sizes (`make reliability-short`,
// in .ci/run); RELIABILITY_EVENTS sets the size of every scenario but the
// soak, RELIABILITY_SOAK_EVENTS the soak's.
package reliability
