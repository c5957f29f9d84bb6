package memory

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/transport"
)

// unsupportedHeaders are JetStream publish headers the bus does not
// implement: a publish carrying one is refused with transport.ErrUnsupported rather
// than stored as if the header were not there.
var unsupportedHeaders = []string{
	"Nats-Schedule-Source",      // schedules sampling another subject
	"Nats-Schedule-Rollup",      // roll-up of a schedule's events
	"Nats-Rollup",               // subject and stream roll-ups
	"Nats-Expected-Last-Msg-Id", // expectation on the last message id
	transport.HeaderBatchID,     // atomic batches go through PublishAtomic
	"Nats-Incr",                 // counters
	"Nats-Required-Api-Level",   // API levels
}

// headerChecks is what a message's headers ask of the stream, once checked.
type headerChecks struct {
	ttl            time.Duration       // > 0: remove it then
	schedule       *transport.Schedule // it is a schedule
	purgeScheduler string              // it ends the schedule on this subject
}

// checkHeadersLocked checks the JetStream headers of a publish on subject
// as the server does (ADR-43 TTL, ADR-51 schedules, expected sequences)
// against the stream's settings and state. Errors match transport.ErrTTLDisabled,
// transport.ErrSchedulesDisabled, transport.ErrInvalidOption, transport.ErrConflict (a
// *transport.ConflictError), ErrWrongStream or transport.ErrUnsupported.
func (s *stream) checkHeadersLocked(subject string, h nats.Header, now time.Time) (headerChecks, error) {
	var hc headerChecks
	if len(h) == 0 {
		return hc, nil
	}
	for _, k := range unsupportedHeaders {
		if _, ok := h[k]; ok {
			if k == transport.HeaderRollup && h.Get(k) == "sub" && h.Get(transport.HeaderSchedule) != "" {
				continue // a schedule's own roll-up, which the bus applies anyway
			}
			return hc, fmt.Errorf("%w: the memory bus does not implement the %s header", transport.ErrUnsupported, k)
		}
	}
	if want := h.Get("Nats-Expected-Stream"); want != "" && want != s.cfg.Name {
		return hc, fmt.Errorf("%w: stored by stream %s, expected %s", ErrWrongStream, s.cfg.Name, want)
	}
	if v := h.Get("Nats-Expected-Last-Sequence"); v != "" {
		want, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return hc, fmt.Errorf("%w: Nats-Expected-Last-Sequence %q", transport.ErrInvalidOption, v)
		}
		if last := uint64(len(s.msgs)); last != want {
			return hc, &transport.ConflictError{Subject: ">", Expected: want, Current: last, CurrentKnown: true}
		}
	}
	if v, ok := h[transport.HeaderExpectedLastSubjectSeq]; ok && len(v) > 0 {
		want, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			return hc, fmt.Errorf("%w: %s %q", transport.ErrInvalidOption, transport.HeaderExpectedLastSubjectSeq, v[0])
		}
		filter := subject
		if f := h.Get(transport.HeaderExpectedLastSubjectSeqSubject); f != "" {
			filter = f
		}
		if last := s.lastSeqLocked(filter); last != want {
			return hc, &transport.ConflictError{Subject: filter, Expected: want, Current: last, CurrentKnown: true}
		}
	} else if h.Get(transport.HeaderExpectedLastSubjectSeqSubject) != "" {
		return hc, fmt.Errorf("%w: %s without %s", transport.ErrInvalidOption, transport.HeaderExpectedLastSubjectSeqSubject, transport.HeaderExpectedLastSubjectSeq)
	}
	if v := h.Get(transport.HeaderTTL); v != "" {
		if !s.cfg.AllowMsgTTL {
			return hc, s.settingErr(transport.ErrTTLDisabled, "AllowMsgTTL", "allow_msg_ttl")
		}
		ttl, err := transport.ParseTTL(v)
		if err != nil {
			return hc, err
		}
		hc.ttl = max(ttl, 0) // "never": kept
	}
	if pattern := h.Get(transport.HeaderSchedule); pattern != "" {
		sched, err := s.checkScheduleLocked(subject, pattern, h)
		if err != nil {
			return hc, err
		}
		hc.schedule = &sched
	}
	if next := h.Get(transport.HeaderScheduleNext); next != "" {
		scheduler := h.Get(transport.HeaderScheduler)
		if next != transport.ScheduleNextPurge || scheduler == "" || scheduler == subject || validSubject(scheduler, false) != nil {
			return hc, fmt.Errorf("%w: %s %q with %s %q: a publish may only end another subject's schedule (purge)", transport.ErrInvalidOption, transport.HeaderScheduleNext, next, transport.HeaderScheduler, scheduler)
		}
		if !s.cfg.AllowMsgSchedules {
			return hc, s.settingErr(transport.ErrSchedulesDisabled, "AllowMsgSchedules", "allow_msg_schedules")
		}
		hc.purgeScheduler = scheduler
	} else if h.Get(transport.HeaderScheduler) != "" {
		return hc, fmt.Errorf("%w: %s without %s", transport.ErrInvalidOption, transport.HeaderScheduler, transport.HeaderScheduleNext)
	}
	return hc, nil
}

// checkScheduleLocked checks a schedule published on subject.
func (s *stream) checkScheduleLocked(subject, pattern string, h nats.Header) (transport.Schedule, error) {
	if !s.cfg.AllowMsgSchedules {
		return transport.Schedule{}, s.settingErr(transport.ErrSchedulesDisabled, "AllowMsgSchedules", "allow_msg_schedules")
	}
	tz, hasTZ := h[transport.HeaderScheduleTimeZone]
	zone := ""
	if hasTZ {
		if len(tz) == 0 || tz[0] == "" {
			return transport.Schedule{}, fmt.Errorf("%w: empty %s", transport.ErrInvalidOption, transport.HeaderScheduleTimeZone)
		}
		zone = tz[0]
	}
	sched, err := transport.ParseSchedule(pattern, zone)
	if err != nil {
		return transport.Schedule{}, err
	}
	if v := h.Get(transport.HeaderScheduleTTL); v != "" {
		if _, err := transport.ParseTTL(v); err != nil {
			return transport.Schedule{}, err
		}
		if !s.cfg.AllowMsgTTL {
			return transport.Schedule{}, s.settingErr(transport.ErrTTLDisabled, "AllowMsgTTL", "allow_msg_ttl")
		}
	}
	target := h.Get(transport.HeaderScheduleTarget)
	if target == "" || target == subject || validSubject(target, false) != nil {
		return transport.Schedule{}, fmt.Errorf("%w: schedule on %s: target %q must be another concrete subject", transport.ErrInvalidOption, subject, target)
	}
	if !matchAny(s.cfg.Subjects, target) {
		return transport.Schedule{}, fmt.Errorf("%w: stream %s stores the schedule %s but not its target %s (a schedule fires into its own stream)", transport.ErrInvalidOption, s.cfg.Name, subject, target)
	}
	return sched, nil
}

// settingErr is the refusal of a stream without a setting: it names the
// stream and the fix, on the bus and on JetStream.
func (s *stream) settingErr(sentinel error, field, yamlKey string) error {
	return fmt.Errorf("%w: stream %s: set %s in its memory.StreamConfig (in production: jetstream.StreamSpec.%s, %s: true in streams.yaml)",
		sentinel, s.cfg.Name, field, field, yamlKey)
}

// lastSeqLocked is the sequence of the last stored message whose subject
// matches filter (wildcards allowed), 0 if none.
func (s *stream) lastSeqLocked(filter string) uint64 {
	if validSubject(filter, false) == nil {
		if live := s.bySubject[filter]; len(live) > 0 {
			return live[len(live)-1].seq
		}
		return 0
	}
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if m := s.msgs[i]; !m.deleted && overlap(filter, m.subject) {
			return m.seq
		}
	}
	return 0
}
