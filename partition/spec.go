package partition

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jetevents/events/envelope"
)

// Header carries an event's partition and the count it was placed with
// ("7/12") on a partitioned subject.
const Header = "Jetevents-Partition"

// MaxCount is the largest number of partitions of a Spec.
const MaxCount = 1024

// ErrInvalidSpec is matched by every Spec error, together with
// envelope.ErrInvalidConfig.
var ErrInvalidSpec = errors.New("invalid partition spec")

// Spec is how a keyed subject space is partitioned. Publishers that place
// events and the groups that read them share one Spec value (declare it
// once, use it in both): a publisher with another Count places keys where
// the group does not expect them.
type Spec struct {
	// Subjects are the subject filters the spec partitions
	// ("auth.user.>"). A publisher places the events it publishes on a
	// subject one of them matches; other subjects are published as they
	// are.
	Subjects []string
	// Count is the number of partitions, 1 to MaxCount. Changing it moves
	// most keys to another partition: drain the groups first (see README
	// "Ordering").
	Count int
	// Key is the event's order key: the same function as the group's
	// OrderKey (router.KeyDataField("user_id")). Keep it a pure function
	// of the event.
	Key func(*envelope.Event) string
}

// Validate reports a spec that cannot be used.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: %s", envelope.ErrInvalidConfig, ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Count < 1 || s.Count > MaxCount:
		return bad("Count %d must be between 1 and %d", s.Count, MaxCount)
	case s.Key == nil:
		return bad("Key is required (the events' order key)")
	case len(s.Subjects) == 0:
		return bad("Subjects is required (the subject filters it partitions)")
	}
	for _, f := range s.Subjects {
		if err := checkFilter(f); err != nil {
			return bad("subject filter %q: %s", f, err)
		}
	}
	return nil
}

// Covers reports whether the spec partitions events published on subject.
func (s Spec) Covers(subject string) bool {
	for _, f := range s.Subjects {
		if Matches(f, subject) {
			return true
		}
	}
	return false
}

// Of is the partition of key: FNV-1a (32 bit) of its bytes modulo Count.
func (s Spec) Of(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(s.Count))
}

// Place returns the subject and header value that put e, published on
// subject, in its partition.
func (s Spec) Place(subject string, e *envelope.Event) (placed, header string) {
	p := s.Of(s.Key(e))
	return Subject(subject, p), HeaderValue(p, s.Count)
}

// Token is the subject token of partition p ("p7").
func Token(p int) string { return "p" + strconv.Itoa(p) }

// HeaderValue is the Header of an event in partition p of count ("7/12").
func HeaderValue(p, count int) string { return strconv.Itoa(p) + "/" + strconv.Itoa(count) }

// ParseHeader reads a Header value.
func ParseHeader(v string) (p, count int, ok bool) {
	a, b, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(a)
	count, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || count < 1 || p < 0 || p >= count {
		return 0, 0, false
	}
	return p, count, true
}

// Subject is subject placed in partition p: the partition token after its
// first token (auth.user.created, 7: auth.p7.user.created).
func Subject(subject string, p int) string {
	first, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return subject + "." + Token(p)
	}
	return first + "." + Token(p) + "." + rest
}

// AnySubject is a filter of subject in every partition (auth.user.created:
// auth.*.user.created).
func AnySubject(subject string) string {
	first, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return subject + ".*"
	}
	return first + ".*." + rest
}

// Original is the subject an event placed on subject was published on:
// subject without its partition token when header (the message's Header
// value) says it was placed, else subject.
func Original(subject, header string) string {
	if header == "" {
		return subject
	}
	first, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return subject
	}
	tok, after, more := strings.Cut(rest, ".")
	switch {
	case !isToken(tok):
		return subject
	case !more:
		return first
	}
	return first + "." + after
}

// isToken reports whether t is a partition token (p<n>).
func isToken(t string) bool {
	if len(t) < 2 || t[0] != 'p' {
		return false
	}
	for _, c := range t[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Filter is the subject filter of partition p for a group filter: the
// partition token after its first token (auth.user.>, 7: auth.p7.user.>).
// A filter whose events a partition filter would also match is refused:
// the group's own durable reads the events published without a partition
// on filter, so filter itself must not match a partitioned subject (see
// CheckGroupFilter).
func Filter(filter string, p int) string {
	first, rest, ok := strings.Cut(filter, ".")
	switch {
	case first == ">":
		return "*." + Token(p) + ".>"
	case !ok:
		return first + "." + Token(p)
	}
	return first + "." + Token(p) + "." + rest
}

// CheckGroupFilter reports why filter cannot be the filter of a
// partitioned group: a filter that matches partitioned subjects too (">",
// "auth.>", "auth.*.created...>") would read every partition's events
// again through the group's own durable, which reads the events published
// without a partition. Name the second token ("auth.user.>"), or use
// subjects of a fixed depth ("orders.*").
func CheckGroupFilter(filter string) error {
	if err := checkFilter(filter); err != nil {
		return err
	}
	toks := strings.Split(filter, ".")
	if toks[len(toks)-1] != ">" {
		return nil // a fixed depth: a placed subject has one token more
	}
	if len(toks) <= 2 || toks[1] == "*" {
		return fmt.Errorf("%w: %w: filter %q of a partitioned group also matches its partitions' subjects (%s): name its second token (%s) or use a fixed depth",
			envelope.ErrInvalidConfig, ErrInvalidSpec, filter, Filter(filter, 0), suggestion(toks))
	}
	return nil
}

func suggestion(toks []string) string {
	if len(toks) == 0 || toks[0] == ">" || toks[0] == "*" {
		return "domain.entity.>"
	}
	return toks[0] + ".entity.>"
}

// checkFilter reports a subject filter that is not one.
func checkFilter(f string) error {
	if f == "" {
		return errors.New("empty")
	}
	toks := strings.Split(f, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return errors.New("empty token")
		case strings.ContainsAny(t, " \t\r\n"):
			return errors.New("whitespace")
		case t == ">" && i != len(toks)-1:
			return errors.New("'>' must be the last token")
		case t != ">" && t != "*" && strings.ContainsAny(t, "*>"):
			return errors.New("a wildcard inside a token")
		}
	}
	return nil
}

// Matches reports whether the NATS subject filter matches subject.
func Matches(filter, subject string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch {
		case ft == ">":
			return st != ""
		case ft != "*" && ft != st:
			return false
		case !fmore || !smore:
			return !fmore && !smore
		}
		filter, subject = frest, srest
	}
}

// Within reports whether every subject filter matches is also matched by
// of (auth.user.created and auth.user.* are within auth.user.>; auth.> is
// not).
func Within(filter, of string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		ot, orest, omore := strings.Cut(of, ".")
		switch {
		case ot == ">":
			return ft != ""
		case ft == ">":
			return false
		case ot == "*":
		case ft == "*" || ft != ot:
			return false
		}
		if !fmore || !omore {
			return !fmore && !omore
		}
		filter, of = frest, orest
	}
}

// CoversFilter reports whether the spec's subjects take every subject of
// filter (a group's filter: its events are all placed).
func (s Spec) CoversFilter(filter string) bool {
	for _, f := range s.Subjects {
		if Within(filter, f) {
			return true
		}
	}
	return false
}
