package transport

import (
	"fmt"
	"strings"
)

// BatchError reports a batch in which at least one event failed.
type BatchError struct {
	// Errs[i] is the outcome of the i-th event: nil when the stream stored it
	// (or already had it).
	Errs []error
}

// Failed is the number of events that failed.
func (e *BatchError) Failed() int {
	n := 0
	for _, err := range e.Errs {
		if err != nil {
			n++
		}
	}
	return n
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "publish batch: %d of %d events failed", e.Failed(), len(e.Errs))
	shown := 0
	for i, err := range e.Errs {
		if err == nil {
			continue
		}
		if shown == 3 {
			b.WriteString("; ...")
			break
		}
		fmt.Fprintf(&b, "; [%d] %v", i, err)
		shown++
	}
	return b.String()
}

// Unwrap returns the non-nil per-event errors, so errors.Is(err, ErrNoStream)
// is true when any event failed for that reason. It is the batch error of
// every transport's publisher (jetstream, memory).
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, len(e.Errs))
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
