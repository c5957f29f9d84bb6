package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// DefaultStream is the dead-letter stream scripts/streams.yaml declares
// (jetstream.DeadLetterStream).
const DefaultStream = "DLQ"

// Queue is one dead-letter stream. Safe for concurrent use; it holds no
// messages between calls.
type Queue struct {
	js        natsjs.JetStream
	st        natsjs.Stream
	name      string
	apiPrefix string
	m         *marshaler.Marshaler
}

// Open looks the dead-letter stream up (DefaultStream when stream is ""). A
// missing stream is an error matching natsjs.ErrStreamNotFound. It never
// closes js's connection.
func Open(ctx context.Context, js natsjs.JetStream, stream string) (*Queue, error) {
	if stream == "" {
		stream = DefaultStream
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("dlq: dead-letter stream %s: %w", stream, err)
	}
	return &Queue{js: js, st: st, name: stream, apiPrefix: apiPrefix(js), m: marshaler.Default()}, nil
}

// apiPrefix is the JetStream API prefix js sends requests to, for the one
// request nats.go has no call for (Purge).
func apiPrefix(js natsjs.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return natsjs.DefaultAPIPrefix
}

// Name is the dead-letter stream's name.
func (q *Queue) Name() string { return q.name }

// Subjects are the stream's subjects, as they were when it was opened.
func (q *Queue) Subjects() []string { return q.st.CachedInfo().Config.Subjects }

// Info reads the stream's current state.
func (q *Queue) Info(ctx context.Context) (*natsjs.StreamInfo, error) {
	return q.st.Info(ctx)
}

// CheckFilter checks a dead-letter subject filter: its syntax
// (ErrInvalidFilter), and that the stream can hold messages on it (a
// *FilterError matching ErrFilterOutsideStream, naming the filter that
// works when the original subject was given without the dlq. prefix). ""
// (every dead letter) is always fine.
func (q *Queue) CheckFilter(filter string) error {
	if filter == "" {
		return nil
	}
	if err := ValidateFilter(filter); err != nil {
		return err
	}
	subjects := q.Subjects()
	if len(subjects) == 0 || holds(subjects, filter) {
		return nil
	}
	return &FilterError{Stream: q.name, Subjects: subjects, Filter: filter, Suggest: subjectFor(subjects, filter)}
}

// ValidateFilter checks a subject filter's syntax: tokens not empty, '*'
// and '>' whole tokens, '>' last, no whitespace. Errors are a
// *SyntaxError matching ErrInvalidFilter.
func ValidateFilter(s string) error {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		var why string
		switch {
		case t == "":
			why = "empty token"
		case strings.ContainsAny(t, " \t\r\n"):
			why = "contains whitespace"
		case strings.ContainsAny(t, "*>") && t != "*" && t != ">":
			why = "'*' and '>' must be whole tokens (auth.user.*, auth.>)"
		case t == ">" && i != len(toks)-1:
			why = "'>' must be the last token"
		}
		if why != "" {
			return &SyntaxError{Filter: s, Why: why}
		}
	}
	return nil
}

// holds reports whether a stream with these subjects can hold messages on
// filter.
func holds(subjects []string, filter string) bool {
	for _, s := range subjects {
		if jetstream.SubjectsOverlap(filter, s) {
			return true
		}
	}
	return false
}

// subjectFor is filter under the prefix of a dead-letter stream subject
// ("dlq.>" and auth.user.created give dlq.auth.user.created), or "".
func subjectFor(subjects []string, filter string) string {
	for _, s := range subjects {
		if prefix, ok := strings.CutSuffix(s, ">"); ok && prefix != "" {
			if holds(subjects, prefix+filter) {
				return prefix + filter
			}
		}
	}
	return ""
}

// Get reads the dead letter at seq. A missing one is an error matching
// ErrNotFound and natsjs.ErrMsgNotFound.
func (q *Queue) Get(ctx context.Context, seq uint64) (*natsjs.RawStreamMsg, error) {
	raw, err := q.st.GetMsg(ctx, seq)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %s seq %d: %w", ErrNotFound, q.name, seq, err)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: reading %s seq %d: %w", q.name, seq, err)
	}
	return raw, nil
}

// Show reads the dead letter at seq in full: Describe with every header.
func (q *Queue) Show(ctx context.Context, seq uint64) (DeadLetter, *natsjs.RawStreamMsg, error) {
	raw, err := q.Get(ctx, seq)
	if err != nil {
		return DeadLetter{}, nil, err
	}
	dl := Describe(q.m, raw)
	dl.Headers = raw.Header
	return dl, raw, nil
}

// Delete removes the dead letter at seq without replaying it. A missing
// one matches ErrNotFound.
func (q *Queue) Delete(ctx context.Context, seq uint64) error {
	err := q.st.DeleteMsg(ctx, seq)
	if missing(err) {
		return fmt.Errorf("%w: %s seq %d: %w", ErrNotFound, q.name, seq, err)
	}
	if err != nil {
		return fmt.Errorf("dlq: deleting %s seq %d: %w", q.name, seq, err)
	}
	return nil
}

// missing reports whether err is the server saying the message is not there
// (a get's ErrMsgNotFound, a delete's "no message found"). nats.go v1.55
// formats the server's error of a failed delete into the text of
// ErrMsgDeleteUnsuccessful (%v, not %w), so the text is all there is.
func missing(err error) bool {
	return err != nil && (errors.Is(err, natsjs.ErrMsgNotFound) || strings.Contains(err.Error(), "no message found"))
}
