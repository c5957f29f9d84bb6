// Package console is a web console for the people on call: an http.Handler
// that a service mounts behind its own auth, and that `jetevents ui` serves.
//
// Pages: the overview (streams; groups, one durable each, with pending, ack
// pending, redelivered, waiting pulls, delivery rate, last activity and a
// state: active, idle, stalled, paused, or the local router's own; the
// dead-letter and schedule counts; the outbox backlog), a group (its
// durable's settings and state, pause and resume, its partitions and their
// owners), the dead letters (a page at a time, by stream sequence, with
// reason, error, type, subject, organization, group and attempts; filters
// and a search; one in full with its envelope and headers; replay of one,
// a selection or every match, now or at a time; purge with a confirmation),
// and the pending schedules of each stream (cancel). Live numbers refresh
// without a reload: the pages' script fetches api/live every
// Config.Refresh.
//
// Security: read-only unless Config.AllowWrites; every write needs the CSRF
// token of the page it came from (a signed double-submit cookie) and is
// refused cross-origin, and each is logged with who made it
// (Config.Identity, the host's user). No credential is rendered: the server
// URL is shown without user and password, and header values whose names
// look like credentials (authorization, token, secret, password, cookie,
// ...) are shown as [redacted]. Pages carry a strict Content-Security-Policy
// (no inline script, nothing from another origin) and may not be framed.
// Config.AllowedHosts refuses other Host headers (DNS rebinding).
//
// Extension points: Config.Pauser (pause and resume; default: JetStream's
// consumer pause), Config.Partitions (a PartitionSource: the partitions of a
// partitioned group and their owners), Config.Health (the local router's
// state), Config.Outbox (outbox backlogs).
//
// Built with html/template and a small plain script; every asset is
// embedded: no CDN, works offline. Dead letters are read and replayed with
// package dlq (shared with jetevents dlq), schedules with
// jetstream.ListSchedules and CancelScheduleAt.
package console
