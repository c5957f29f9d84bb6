// Package reliability holds the crash suite of jetevents (`make
// reliability`): real nats-server processes (eventstest.NewCluster)
// SIGKILLed and restarted under load while events flow through the public
// API (jetstream.Publisher, router.Router), counted per event id. Each
// scenario prints one row of a table (scenario, events, acked, lost,
// duplicates, dead-lettered, longest time without progress) and asserts on
// it. The tests are behind the build tag "reliability", so `go test ./...`
// does not run them; RELIABILITY_EVENTS sets the size of each scenario.
package reliability
