package partition

import (
	"fmt"

	"github.com/jetevents/events/envelope"
)

// Specs are a publisher's partition specs: the first that covers a subject
// places the events published on it.
type Specs []Spec

// Validate reports the first spec that cannot be used.
func (ss Specs) Validate() error {
	for i, s := range ss {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("Partitions[%d]: %w", i, err)
		}
	}
	return nil
}

// Covers reports whether a spec covers subject.
func (ss Specs) Covers(subject string) bool {
	for i := range ss {
		if ss[i].Covers(subject) {
			return true
		}
	}
	return false
}

// Place is the subject e, published on subject, is stored on and its
// Header value: placed in its key's partition by the first spec that
// covers subject, else subject itself and "" (also for an invalid subject
// or a nil event, which the publisher refuses as they are).
func (ss Specs) Place(subject string, e *envelope.Event) (placed, header string) {
	if e == nil || len(ss) == 0 || envelope.ValidateSubject(subject) != nil {
		return subject, ""
	}
	for i := range ss {
		if ss[i].Covers(subject) {
			return ss[i].Place(subject, e)
		}
	}
	return subject, ""
}
