package transport

import (
	"fmt"
	"strings"
	"time"
)

// PublishOption changes one publish: deliver it later (At, After), on a
// recurring schedule (Cron, Every, with InTimeZone), give it a time to live
// (TTL), or store it only if a subject's last sequence is still the one the
// caller read (ExpectLastSequence). The publishers of every transport
// (jetstream, memory) take the same options, so service code reads the same
// in production and in tests. Options are comparable values: a testify
// expectation can name them (On("Publish", ctx, subject, event,
// events.After(time.Hour))).
type PublishOption interface {
	applyPublish(*PublishOptions) error
}

// PublishOptions is a set of PublishOptions resolved and checked (see
// ResolvePublishOptions): what a transport's publisher reads.
type PublishOptions struct {
	// Exactly one of At, After (HasAfter), Cron and Every is set for a
	// scheduled publish; none for an immediate one.
	At       time.Time
	After    time.Duration
	HasAfter bool
	Cron     string
	Every    time.Duration
	// TimeZone is the IANA zone a Cron schedule is read in (empty: UTC).
	TimeZone string
	// TTL is the time to live of the stored event (of each event a schedule
	// produces, for a scheduled publish). Zero: none.
	TTL time.Duration
	// ExpectSubject and ExpectSequence are ExpectLastSequence's, when Expect.
	ExpectSubject  string
	ExpectSequence uint64
	Expect         bool
}

// Scheduled reports whether the publish is a schedule (At, After, Cron or
// Every) rather than an immediate publish.
func (o PublishOptions) Scheduled() bool {
	return !o.At.IsZero() || o.HasAfter || o.Cron != "" || o.Every != 0
}

// Repeats reports whether the schedule is recurring (Cron, Every).
func (o PublishOptions) Repeats() bool { return o.Cron != "" || o.Every != 0 }

// Pattern is the schedule as the server reads it (the Nats-Schedule
// header): "@at <RFC 3339>" for At and After (After counted from now, the
// publisher's clock), the cron expression, or "@every <duration>". Empty
// when not Scheduled.
func (o PublishOptions) Pattern(now time.Time) string {
	switch {
	case !o.At.IsZero():
		return "@at " + o.At.UTC().Format(time.RFC3339Nano)
	case o.HasAfter:
		return "@at " + now.Add(o.After).UTC().Format(time.RFC3339Nano)
	case o.Cron != "":
		return o.Cron
	case o.Every != 0:
		return "@every " + o.Every.String()
	}
	return ""
}

// ResolvePublishOptions applies opts (nil ones are skipped) and checks them
// together: at most one schedule, InTimeZone only with Cron, a cron
// expression that parses as the server parses it. Errors match
// ErrInvalidOption.
func ResolvePublishOptions(opts []PublishOption) (PublishOptions, error) {
	var o PublishOptions
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.applyPublish(&o); err != nil {
			return PublishOptions{}, err
		}
	}
	if o.TimeZone != "" {
		if o.Cron == "" {
			return PublishOptions{}, fmt.Errorf("%w: InTimeZone(%q) applies to a Cron schedule only (At, After and Every are absolute)", ErrInvalidOption, o.TimeZone)
		}
	}
	if o.Cron != "" {
		if _, err := ParseSchedule(o.Cron, o.TimeZone); err != nil {
			return PublishOptions{}, err
		}
	}
	return o, nil
}

// setSchedule records one schedule, refusing a second.
func (o *PublishOptions) setSchedule(what string, set func()) error {
	if o.Scheduled() {
		return fmt.Errorf("%w: %s: a publish has one schedule (At, After, Cron or Every)", ErrInvalidOption, what)
	}
	set()
	return nil
}

type atOption struct{ t time.Time }

func (a atOption) applyPublish(o *PublishOptions) error {
	if a.t.IsZero() {
		return fmt.Errorf("%w: At(zero time)", ErrInvalidOption)
	}
	return o.setSchedule("At", func() { o.At = a.t })
}

// At delivers the event at t instead of now: the stream holds it (as a
// message schedule) and stores it on its subject at t, with its id, type
// and data unchanged. A t in the past delivers at once. The stream must
// allow message schedules (ErrSchedulesDisabled otherwise). Cancel it with
// CancelSchedule(subject, event id) before it fires.
func At(t time.Time) PublishOption { return atOption{t: t} }

type afterOption struct{ d time.Duration }

func (a afterOption) applyPublish(o *PublishOptions) error {
	if a.d < 0 {
		return fmt.Errorf("%w: After(%s) is negative", ErrInvalidOption, a.d)
	}
	return o.setSchedule("After", func() { o.After, o.HasAfter = a.d, true })
}

// After delivers the event d from now (the publisher's clock: the memory
// bus's manual clock in tests): At(now + d). The server fires it by its own
// clock, so a publisher whose clock is off shifts the time by as much.
func After(d time.Duration) PublishOption { return afterOption{d: d} }

type cronOption struct{ expr string }

func (c cronOption) applyPublish(o *PublishOptions) error {
	expr := strings.TrimSpace(c.expr)
	if expr == "" {
		return fmt.Errorf("%w: Cron(\"\")", ErrInvalidOption)
	}
	if strings.HasPrefix(expr, "@at ") || strings.HasPrefix(expr, "@every ") {
		return fmt.Errorf("%w: Cron(%q): use At or Every", ErrInvalidOption, c.expr)
	}
	return o.setSchedule("Cron", func() { o.Cron = expr })
}

// Cron stores the event on its subject on a recurring schedule until the
// schedule is cancelled: six fields, "second minute hour day-of-month month
// day-of-week" ("0 30 9 * * mon-fri": 09:30 on weekdays), or @yearly,
// @monthly, @weekly, @daily (@midnight), @hourly. Times are UTC unless
// InTimeZone names a zone. Each occurrence is an event of its own: its id
// is derived from the event's id and the occurrence (see
// marshaler.OccurrenceID), so idempotent handlers tell occurrences apart;
// type and data are the event's. Publishing again with the same subject and
// event id replaces the schedule.
func Cron(expr string) PublishOption { return cronOption{expr: expr} }

type everyOption struct{ d time.Duration }

func (e everyOption) applyPublish(o *PublishOptions) error {
	if e.d < time.Second {
		return fmt.Errorf("%w: Every(%s): the shortest interval is 1s", ErrInvalidOption, e.d)
	}
	return o.setSchedule("Every", func() { o.Every = e.d })
}

// Every stores the event on its subject every d (at least 1s), the first
// time d after it is published, until the schedule is cancelled. See Cron
// for what each occurrence is.
func Every(d time.Duration) PublishOption { return everyOption{d: d} }

type timeZoneOption struct{ name string }

func (z timeZoneOption) applyPublish(o *PublishOptions) error {
	if z.name == "" {
		return fmt.Errorf("%w: InTimeZone(\"\") (leave it out for UTC)", ErrInvalidOption)
	}
	if _, err := time.LoadLocation(z.name); err != nil {
		return fmt.Errorf("%w: InTimeZone(%q): %v", ErrInvalidOption, z.name, err)
	}
	o.TimeZone = z.name
	return nil
}

// InTimeZone reads a Cron schedule in the IANA time zone name
// ("Europe/Paris") instead of UTC. The name is checked against this
// machine's tzdata before sending (a binary for a system without it can
// embed it: import _ "time/tzdata"); the server resolves it with its own.
// A cron time that a daylight-saving change skips does not fire that day,
// and one it repeats may fire twice.
func InTimeZone(name string) PublishOption { return timeZoneOption{name: name} }

type ttlOption struct{ d time.Duration }

func (t ttlOption) applyPublish(o *PublishOptions) error {
	if t.d < time.Second {
		return fmt.Errorf("%w: TTL(%s): the shortest time to live is 1s", ErrInvalidOption, t.d)
	}
	o.TTL = t.d.Truncate(time.Second)
	return nil
}

// TTL removes the stored event d after it was stored (whole seconds, at
// least 1s): a consumer that has not received it by then never will. On a
// scheduled publish it applies to each event the schedule stores, counted
// from when it is stored (the schedule itself waits as long as it must).
// The stream must allow per-message TTL (ErrTTLDisabled otherwise).
func TTL(d time.Duration) PublishOption { return ttlOption{d: d} }

type expectOption struct {
	subject string
	seq     uint64
}

func (e expectOption) applyPublish(o *PublishOptions) error {
	if err := validFilter(e.subject); err != nil {
		return fmt.Errorf("%w: ExpectLastSequence(%q, %d): %w", ErrInvalidOption, e.subject, e.seq, err)
	}
	o.ExpectSubject, o.ExpectSequence, o.Expect = e.subject, e.seq, true
	return nil
}

// ExpectLastSequence stores the publish (or the whole atomic batch) only if
// the last message stored on subject has sequence seq (0: none yet):
// optimistic concurrency on an aggregate whose events share a subject or a
// subject prefix (wildcards allowed: "orders.1234.>"). When someone else
// wrote since, nothing is stored and the error is a *ConflictError
// (matching ErrConflict) carrying the current sequence.
func ExpectLastSequence(subject string, seq uint64) PublishOption {
	return expectOption{subject: subject, seq: seq}
}

// validFilter checks a subject filter: dot-separated non-empty tokens
// without whitespace, '*' a whole token, '>' the whole last token.
func validFilter(s string) error {
	if s == "" {
		return fmt.Errorf("empty subject")
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("%q has an empty token", s)
		case strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("%q holds whitespace", s)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("%q: '>' must be the last token", s)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: a wildcard must be a whole token", s)
		}
	}
	return nil
}
