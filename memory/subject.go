package memory

import (
	"fmt"
	"strings"

	"github.com/jetevents/events/envelope"
)

// validSubject checks a NATS subject: non-empty dot-separated tokens without
// whitespace; with wildcards, '*' may be a whole token and '>' the whole last
// token.
func validSubject(s string, wildcards bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty subject", envelope.ErrInvalidSubject)
	}
	if strings.ContainsAny(s, " \t\r\n\x00") {
		return fmt.Errorf("%w: %q holds whitespace", envelope.ErrInvalidSubject, s)
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("%w: %q has an empty token", envelope.ErrInvalidSubject, s)
		case !wildcards && (t == "*" || t == ">"):
			return fmt.Errorf("%w: %q: wildcards are not allowed here", envelope.ErrInvalidSubject, s)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("%w: %q: '>' must be the last token", envelope.ErrInvalidSubject, s)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%w: %q: a wildcard must be a whole token", envelope.ErrInvalidSubject, s)
		}
	}
	return nil
}

// overlap reports whether some subject matches both patterns a and b (a
// concrete subject is a pattern matching itself, so overlap(p, s) is "s
// matches p"). '*' matches one token, '>' one or more.
func overlap(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		bt, brest, bmore := strings.Cut(b, ".")
		if at == ">" || bt == ">" {
			return true
		}
		if at != "*" && bt != "*" && at != bt {
			return false
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}

// matchAny reports whether subject matches one of patterns. A removed
// message has no subject and matches nothing, so durables skip it.
func matchAny(patterns []string, subject string) bool {
	if subject == "" {
		return false
	}
	for _, p := range patterns {
		if overlap(p, subject) {
			return true
		}
	}
	return false
}

// validName checks a stream or durable name as JetStream does.
func validName(kind, s string) error {
	if s == "" || strings.ContainsAny(s, ".*>/\\ \t\r\n\x00") {
		return fmt.Errorf("%w: %s name %q: empty, or holds '.', '*', '>', a path separator or whitespace", envelope.ErrInvalidConfig, kind, s)
	}
	return nil
}
