package transport

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// JetStream's headers for schedules, TTL, expectations and atomic batches
// (ADR-51, ADR-43, ADR-50). The memory bus reads and writes the same ones.
const (
	HeaderSchedule         = "Nats-Schedule"
	HeaderScheduleTarget   = "Nats-Schedule-Target"
	HeaderScheduleTTL      = "Nats-Schedule-TTL"
	HeaderScheduleTimeZone = "Nats-Schedule-Time-Zone"
	// HeaderScheduler and HeaderScheduleNext are set by the server on each
	// event a schedule stores: the schedule's subject, and the time it fires
	// next ("purge" for a one-shot schedule, which is then removed).
	HeaderScheduler    = "Nats-Scheduler"
	HeaderScheduleNext = "Nats-Schedule-Next"
	ScheduleNextPurge  = "purge"

	HeaderTTL    = "Nats-TTL"
	HeaderRollup = "Nats-Rollup"

	HeaderExpectedLastSubjectSeq        = "Nats-Expected-Last-Subject-Sequence"
	HeaderExpectedLastSubjectSeqSubject = "Nats-Expected-Last-Subject-Sequence-Subject"

	HeaderBatchID     = "Nats-Batch-Id"
	HeaderBatchSeq    = "Nats-Batch-Sequence"
	HeaderBatchCommit = "Nats-Batch-Commit"
)

// SchedulePrefix is the first token of the subjects where pending schedules
// wait: the schedule of an event published on subject S with id ID waits on
// "_schedule.S.ID" (see ScheduleSubject) in the stream that stores S, until
// it fires onto S. A stream that allows schedules (StreamSpec.AllowMsgSchedules)
// stores these subjects next to its own (ScheduleSubjects), and consumers
// filtered on S's subjects never see them.
const SchedulePrefix = "_schedule"

// MaxAtomicBatch is the largest atomic batch nats-server takes by default
// (its max_batch_size limit).
const MaxAtomicBatch = 1000

// ScheduleSubject is the subject where the schedule of the event with id
// eventID, published on target, waits: SchedulePrefix.target.token, where
// token is the event id when it is a plain subject token (letters, digits,
// '-', '_', up to 64 bytes: a UUID is) and otherwise a hash of it. One
// subject per event: publishing a schedule for the same subject and event
// id again replaces it.
func ScheduleSubject(target, eventID string) string {
	return SchedulePrefix + "." + target + "." + idToken(eventID)
}

func idToken(id string) string {
	if len(id) > 0 && len(id) <= 64 && strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(sum[:16])
}

// ScheduleSubjects are the subjects a stream storing subjects must also
// store for the schedules of the events published on them: "_schedule.S.*"
// for each S ("_schedule.S" when S ends with '>', which takes the id token
// already). A subject already covered by one of subjects, or deriving from
// a schedule subject, is left out.
func ScheduleSubjects(subjects []string) []string {
	var out []string
	for _, s := range subjects {
		if s == SchedulePrefix || strings.HasPrefix(s, SchedulePrefix+".") {
			continue // a schedule subject itself
		}
		p := SchedulePrefix + "." + s
		if !strings.HasSuffix(s, ">") {
			p += ".*"
		}
		covered := false
		for _, o := range subjects {
			if subsetOf(p, o) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// subsetOf reports whether every subject pattern a matches also matches b.
func subsetOf(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := range at {
		if i >= len(bt) {
			return false
		}
		switch {
		case bt[i] == ">":
			return true
		case at[i] == ">":
			return false
		case bt[i] == "*":
		case at[i] == "*" || at[i] != bt[i]:
			return false
		}
	}
	return len(at) == len(bt)
}

// Apply makes msg, built for its subject by marshaler.PublishMsg for the
// event eventID, the message opts call for; now is the publisher's clock
// (After counts from it).
//
// A scheduled publish goes to ScheduleSubject(subject, eventID) with the
// schedule headers and the event's own headers, which the server copies
// onto every event the schedule stores (so each keeps the event's id, type
// and correlation). Its Nats-Msg-Id is the event id plus the schedule: a
// retried publish of the same schedule is stored once, and neither a
// changed schedule nor a later immediate publish of the same event is
// mistaken for a duplicate of it. A TTL then applies to the stored events
// (Nats-Schedule-TTL); otherwise it is the message's own (Nats-TTL).
func (o PublishOptions) Apply(msg *nats.Msg, eventID string, now time.Time) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	if o.Scheduled() {
		target := msg.Subject
		pattern := o.Pattern(now)
		msg.Subject = ScheduleSubject(target, eventID)
		msg.Header.Set(HeaderSchedule, pattern)
		msg.Header.Set(HeaderScheduleTarget, target)
		id := eventID + " " + pattern
		if o.TimeZone != "" {
			msg.Header.Set(HeaderScheduleTimeZone, o.TimeZone)
			id += " " + o.TimeZone
		}
		msg.Header.Set(nats.MsgIdHdr, id)
		if o.TTL > 0 {
			msg.Header.Set(HeaderScheduleTTL, ttlText(o.TTL))
		}
	} else if o.TTL > 0 {
		msg.Header.Set(HeaderTTL, ttlText(o.TTL))
	}
	if o.Expect {
		msg.Header.Set(HeaderExpectedLastSubjectSeq, strconv.FormatUint(o.ExpectSequence, 10))
		msg.Header.Set(HeaderExpectedLastSubjectSeqSubject, o.ExpectSubject)
	}
}

// ttlText is a TTL as the header carries it: whole seconds.
func ttlText(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

// ParseTTL reads a Nats-TTL header as the server does: a Go duration or a
// number of seconds, at least one second, or "never" (ok with d < 0).
func ParseTTL(s string) (d time.Duration, err error) {
	if strings.EqualFold(s, "never") {
		return -1, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < time.Second {
			return 0, fmt.Errorf("%w: TTL %q under 1s", ErrInvalidOption, s)
		}
		return d.Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: TTL %q is not a duration of at least 1s", ErrInvalidOption, s)
	}
	return time.Duration(n) * time.Second, nil
}
