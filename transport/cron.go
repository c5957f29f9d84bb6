package transport

// The schedule grammar is nats-server's (server/scheduler.go parseMsgSchedule
// and server/cron.go, v2.15), itself based on github.com/robfig/cron
// (Copyright (C) 2012 Rob Figueiredo, MIT licence), ported here so that the
// memory bus fires schedules exactly when JetStream does and so that a
// publisher refuses, before sending, what the server would refuse.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed message schedule (the Nats-Schedule header with its
// Nats-Schedule-Time-Zone): one time ("@at <RFC 3339>"), an interval
// ("@every 1m") or a cron expression.
type Schedule struct {
	at    time.Time
	every time.Duration
	cron  *cronSpec
}

type cronSpec struct {
	second, minute, hour, dom, month, dow uint64
	loc                                   *time.Location
}

// ParseSchedule parses a schedule pattern and its time zone ("" for UTC),
// as nats-server does. Errors match ErrInvalidOption.
func ParseSchedule(pattern, timeZone string) (Schedule, error) {
	bad := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, fmt.Errorf("%w: schedule %q: %s", ErrInvalidOption, pattern, fmt.Sprintf(format, args...))
	}
	var loc *time.Location
	if timeZone != "" {
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return bad("time zone %q: %v", timeZone, err)
		}
		loc = l
	}
	switch {
	case pattern == "":
		return bad("empty")
	case strings.HasPrefix(pattern, "@at "):
		if loc != nil {
			return bad("a time zone applies to cron schedules only")
		}
		t, err := time.Parse(time.RFC3339, pattern[4:])
		if err != nil {
			return bad("%v", err)
		}
		return Schedule{at: t}, nil
	case strings.HasPrefix(pattern, "@every "):
		if loc != nil {
			return bad("a time zone applies to cron schedules only")
		}
		d, err := time.ParseDuration(pattern[7:])
		if err != nil {
			return bad("%v", err)
		}
		if d < time.Second {
			return bad("the shortest interval is 1s")
		}
		return Schedule{every: d}, nil
	}
	expr := pattern
	switch pattern {
	case "@yearly", "@annually":
		expr = "0 0 0 1 1 *"
	case "@monthly":
		expr = "0 0 0 1 * *"
	case "@weekly":
		expr = "0 0 0 * * 0"
	case "@daily", "@midnight":
		expr = "0 0 0 * * *"
	case "@hourly":
		expr = "0 0 * * * *"
	}
	c, err := parseCron(expr)
	if err != nil {
		return bad("%v", err)
	}
	if loc == nil {
		loc = time.UTC
	}
	c.loc = loc
	// The server refuses a pattern with no time within five years.
	if _, err := c.next(time.Now()); err != nil {
		return bad("%v", err)
	}
	return Schedule{cron: c}, nil
}

// Repeats reports whether the schedule fires more than once (interval and
// cron schedules).
func (s Schedule) Repeats() bool { return s.at.IsZero() }

// Next is when the schedule fires after from (the time the schedule was
// stored, or the time it last fired), as nats-server computes it: the @at
// time itself; from (rounded to the second) plus the interval; the next cron
// time after from. A repeating schedule that would fire before now (a
// server down for a while) fires once, at its next time after now, rather
// than once per missed time.
func (s Schedule) Next(from, now time.Time) (time.Time, error) {
	switch {
	case !s.at.IsZero():
		return s.at, nil
	case s.every > 0:
		next := from.UTC().Round(time.Second).Add(s.every)
		if n := now.UTC(); next.Before(n) {
			next = n.Round(time.Second).Add(s.every)
		}
		return next, nil
	case s.cron != nil:
		next, err := s.cron.next(from)
		if err != nil {
			return time.Time{}, err
		}
		if n := now.UTC(); next.Before(n) {
			return s.cron.next(n.Round(time.Second))
		}
		return next, nil
	}
	return time.Time{}, fmt.Errorf("%w: empty schedule", ErrInvalidOption)
}

// parseCron parses the six fields.
func parseCron(pattern string) (*cronSpec, error) {
	fields := strings.Fields(pattern)
	if len(fields) != 6 {
		return nil, fmt.Errorf("a cron schedule has 6 fields (second minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	var c cronSpec
	var err error
	for i, f := range []struct {
		dst *uint64
		b   bounds
	}{{&c.second, seconds}, {&c.minute, minutes}, {&c.hour, hours}, {&c.dom, dom}, {&c.month, months}, {&c.dow, dow}} {
		if *f.dst, err = getField(fields[i], f.b); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// next is the first time after t (at the next whole second or later) that
// matches, in the spec's location; an error when none is within five years.
func (c *cronSpec) next(t time.Time) (time.Time, error) {
	loc := c.loc
	next := t.In(loc).Truncate(time.Second).Add(time.Second)
	truncated := false
	yearLimit := next.Year() + 5

WRAP:
	if next.Year() > yearLimit {
		return time.Time{}, errors.New("no time matches within five years")
	}
	for 1<<uint(next.Month())&c.month == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 1, 0); next.Month() == time.January {
			goto WRAP
		}
	}
	for !dayMatches(c.dom, c.dow, next) {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 0, 1); next.Day() == 1 {
			goto WRAP
		}
	}
	for 1<<uint(next.Hour())&c.hour == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), 0, 0, 0, loc)
		}
		if next = next.Add(time.Hour); next.Hour() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Minute())&c.minute == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Minute)
		}
		if next = next.Add(time.Minute); next.Minute() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Second())&c.second == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Second)
		}
		if next = next.Add(time.Second); next.Second() == 0 {
			goto WRAP
		}
	}
	return next, nil
}

// getField returns the bits a comma-separated list of ranges sets.
func getField(field string, r bounds) (uint64, error) {
	var bits uint64
	for expr := range strings.FieldsFuncSeq(field, func(r rune) bool { return r == ',' }) {
		bit, err := getRange(expr, r)
		if err != nil {
			return bits, err
		}
		bits |= bit
	}
	return bits, nil
}

// getRange returns the bits of number | number "-" number, with an
// optional "/" step; "*" and "?" are the whole range.
func getRange(expr string, r bounds) (uint64, error) {
	var (
		start, end, step uint
		rangeAndStep     = strings.Split(expr, "/")
		lowAndHigh       = strings.Split(rangeAndStep[0], "-")
		singleDigit      = len(lowAndHigh) == 1
		err              error
		extra            uint64
	)
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end, extra = r.min, r.max, starBit
	} else {
		if start, err = parseIntOrName(lowAndHigh[0], r.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = parseIntOrName(lowAndHigh[1], r.names); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	switch len(rangeAndStep) {
	case 1:
		step = 1
	case 2:
		if step, err = mustParseInt(rangeAndStep[1]); err != nil {
			return 0, err
		}
		// "N/step" means "N-max/step".
		if singleDigit {
			end = r.max
		}
		if step > 1 {
			extra = 0
		}
	default:
		return 0, fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < r.min:
		return 0, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, r.min, expr)
	case end > r.max:
		return 0, fmt.Errorf("end of range (%d) above maximum (%d): %s", end, r.max, expr)
	case start > end:
		return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return 0, fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return getBits(start, end, step) | extra, nil
}

func parseIntOrName(expr string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(expr)]; ok {
		return n, nil
	}
	return mustParseInt(expr)
}

func mustParseInt(expr string) (uint, error) {
	num, err := strconv.Atoi(expr)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", expr, err)
	}
	if num < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", num, expr)
	}
	return uint(num), nil
}

// getBits sets the bits in [min, max], every step.
func getBits(min, max, step uint) uint64 {
	if step == 1 {
		return ^(math.MaxUint64 << (max + 1)) & (math.MaxUint64 << min)
	}
	var bits uint64
	for i := min; i <= max; i += step {
		bits |= 1 << i
	}
	return bits
}

// bounds are a field's values (and names).
type bounds struct {
	min, max uint
	names    map[string]uint
}

var (
	seconds = bounds{0, 59, nil}
	minutes = bounds{0, 59, nil}
	hours   = bounds{0, 23, nil}
	dom     = bounds{1, 31, nil}
	months  = bounds{1, 12, map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dow = bounds{0, 6, map[string]uint{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}
)

// starBit marks a field written with '*' (or '?').
const starBit = 1 << 63

// dayMatches applies cron's day rule: when both day fields are restricted,
// either may match; when one is '*', both must.
func dayMatches(dayOfMonth, dayOfWeek uint64, t time.Time) bool {
	domMatch := 1<<uint(t.Day())&dayOfMonth > 0
	dowMatch := 1<<uint(t.Weekday())&dayOfWeek > 0
	if dayOfMonth&starBit > 0 || dayOfWeek&starBit > 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}
