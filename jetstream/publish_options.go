package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// PublishOption changes one publish (Publish, PublishAck, PublishAsync,
// PublishAtomic): transport.At, After, Cron, Every, InTimeZone, TTL,
// ExpectLastSequence (events.At ... at the root). It is
// transport.PublishOption, so the memory bus's publisher takes the same
// values.
type PublishOption = transport.PublishOption

// ConflictError is an ExpectLastSequence that did not hold (see
// transport.ConflictError); it matches transport.ErrConflict.
type ConflictError = transport.ConflictError

// encodeWith validates subject, event and options and builds the message
// they call for.
func (p *Publisher) encodeWith(ctx context.Context, subject string, e *envelope.Event, opts []PublishOption) (*nats.Msg, error) {
	msg, err := p.encode(ctx, subject, e)
	if err != nil || len(opts) == 0 {
		return msg, err
	}
	o, err := transport.ResolvePublishOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("publish %s event %s: %w", subject, e.ID, err)
	}
	o.Apply(msg, e.ID, time.Now())
	if err := marshaler.CheckMaxPayload(msg, p.nc.MaxPayload()); err != nil {
		return nil, fmt.Errorf("publish %s: event %s: %w", subject, e.ID, err)
	}
	return msg, nil
}

// eventIDOf is the id of the event msg carries: its ce-id (the Nats-Msg-Id
// of a schedule is the id and the schedule).
func eventIDOf(msg *nats.Msg) string {
	if id := msg.Header.Get(marshaler.HeaderID); id != "" {
		return id
	}
	return msg.Header.Get(marshaler.HeaderMsgID)
}

// subjectOf is the subject msg's event is published on: the target of a
// schedule, else the message's own.
func subjectOf(msg *nats.Msg) string {
	if t := msg.Header.Get(transport.HeaderScheduleTarget); t != "" {
		return t
	}
	return msg.Subject
}

// Server error codes the publisher gives a sentinel of its own (nats.go
// names some of them; the others are nats-server's).
const (
	jsErrCodeTTLDisabled           = 10166
	jsErrCodeTTLInvalid            = 10165
	jsErrCodeWrongLastSeq          = 10071 // "wrong last sequence: N"
	jsErrCodeWrongLastSeqConstant  = 10164 // the subject has a write in flight
	jsErrCodeAtomicDisabled        = 10174
	jsErrCodeAtomicIncomplete      = 10176
	jsErrCodeAtomicTooLarge        = 10199
	jsErrCodeAtomicDuplicate       = 10201
	jsErrCodeAtomicTooManyInflight = 10210
	jsErrCodeScheduleTimeZoneWrong = 10223
)

// refusal gives the server's refusal of an option its sentinel, naming the
// stream that stores the subject (looked up, within ctx) and the fix.
func (p *Publisher) refusal(ctx context.Context, msg *nats.Msg, err error) error {
	err = refusalErr(msg, err, func(subject string) string { return p.streamOf(ctx, subject) })
	var ce *ConflictError
	if errors.As(err, &ce) && !ce.CurrentKnown {
		ce.Current, ce.CurrentKnown = p.lastSequence(ctx, msg.Subject, ce.Subject)
	}
	return err
}

// lastSequence reads the last sequence stored on filter in the stream that
// stores subject (0 when none); ok is false when it cannot be read.
func (p *Publisher) lastSequence(ctx context.Context, subject, filter string) (seq uint64, ok bool) {
	lctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	name, err := p.js.StreamNameBySubject(lctx, subject)
	if err != nil {
		return 0, false
	}
	st, err := p.js.Stream(lctx, name)
	if err != nil {
		return 0, false
	}
	m, err := st.GetLastMsgForSubject(lctx, filter)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return 0, true
	}
	if err != nil {
		return 0, false
	}
	return m.Sequence, true
}

// streamOf names the stream that stores subject, or "" when it cannot be
// found out.
func (p *Publisher) streamOf(ctx context.Context, subject string) string {
	lctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	name, err := p.js.StreamNameBySubject(lctx, subject)
	if err != nil {
		return ""
	}
	return name
}

// refusalErr maps err, the server's answer to msg, to the sentinel of a
// refused option: transport.ErrSchedulesDisabled, transport.ErrTTLDisabled, transport.ErrAtomicDisabled
// (with the stream, from stream(subject) when not nil, and the fix),
// transport.ErrInvalidOption, or a *ConflictError. Other errors are returned as they
// are. The server's error stays in the chain.
func refusalErr(msg *nats.Msg, err error, stream func(subject string) string) error {
	subject := subjectOf(msg)
	if subject != msg.Subject && (errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
		// No stream stores the schedule subject: either the target's stream
		// does not allow schedules, or no stream stores the target at all.
		if stream != nil {
			if s := stream(subject); s != "" {
				return fmt.Errorf("%w: stream %s stores %s but not %s, where its schedule waits: set AllowMsgSchedules in its StreamSpec (allow_msg_schedules: true in streams.yaml) and apply it, which adds the _schedule subjects (%v)",
					transport.ErrSchedulesDisabled, s, subject, msg.Subject, err)
			}
		}
		return fmt.Errorf("%w: no stream stores %s, where the schedule of %s waits: the stream of %s must allow schedules (StreamSpec.AllowMsgSchedules adds the _schedule subjects), if there is one (%v)",
			transport.ErrNoStream, msg.Subject, subject, subject, err)
	}
	var apiErr *natsjs.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	name := func() string {
		if stream != nil {
			if s := stream(subject); s != "" {
				return "stream " + s
			}
		}
		return "the stream that stores " + subject
	}
	switch apiErr.ErrorCode {
	case natsjs.JSErrCodeMessageSchedulesDisabled:
		return fmt.Errorf("%w: %s: set AllowMsgSchedules in its StreamSpec (allow_msg_schedules: true in streams.yaml) and apply it (nats-server 2.12 or later): %w",
			transport.ErrSchedulesDisabled, name(), err)
	case jsErrCodeTTLDisabled:
		return fmt.Errorf("%w: %s: set AllowMsgTTL in its StreamSpec (allow_msg_ttl: true in streams.yaml) and apply it: %w",
			transport.ErrTTLDisabled, name(), err)
	case jsErrCodeAtomicDisabled:
		return fmt.Errorf("%w: %s: set AllowAtomicPublish in its StreamSpec (allow_atomic: true in streams.yaml) and apply it (nats-server 2.12 or later): %w",
			transport.ErrAtomicDisabled, name(), err)
	case natsjs.JSErrCodeScheduleTargetInvalid:
		return fmt.Errorf("%w: %s does not store the schedule subject %s next to %s: set AllowMsgSchedules in its StreamSpec and apply it (it adds the _schedule subjects): %w",
			transport.ErrSchedulesDisabled, name(), msg.Subject, subject, err)
	case natsjs.JSErrCodeSchedulePatternInvalid, natsjs.JSErrCodeScheduleTTLInvalid, jsErrCodeTTLInvalid, jsErrCodeScheduleTimeZoneWrong:
		return fmt.Errorf("%w: %s: %w", transport.ErrInvalidOption, msg.Header.Get(transport.HeaderSchedule), err)
	case jsErrCodeWrongLastSeq, jsErrCodeWrongLastSeqConstant:
		return conflictErr(msg, apiErr, err)
	}
	return err
}

// conflictErr is the *ConflictError of a refused expectation; the current
// sequence is read from the server's description ("wrong last sequence:
// N"), when it gives one.
func conflictErr(msg *nats.Msg, apiErr *natsjs.APIError, err error) error {
	ce := &ConflictError{Subject: msg.Header.Get(transport.HeaderExpectedLastSubjectSeqSubject)}
	if ce.Subject == "" {
		ce.Subject = msg.Subject
	}
	ce.Expected, _ = strconv.ParseUint(msg.Header.Get(transport.HeaderExpectedLastSubjectSeq), 10, 64)
	if apiErr.ErrorCode == jsErrCodeWrongLastSeq {
		if i := strings.LastIndexByte(apiErr.Description, ':'); i >= 0 {
			if n, perr := strconv.ParseUint(strings.TrimSpace(apiErr.Description[i+1:]), 10, 64); perr == nil {
				ce.Current, ce.CurrentKnown = n, true
			}
		}
	}
	return fmt.Errorf("%w: %w", ce, err)
}
