package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

var _ transport.Pauser = (*Transport)(nil)

// Pause pauses the durable until until with JetStream's consumer pause
// (nats-server 2.11 or later; nats.go's PauseConsumer): the server delivers
// nothing to it until then, resumes it by itself at until, and keeps
// answering pulls with heartbeats meanwhile, so a bound router group stays
// active and does not read the silence as a stall. See transport.Pauser for
// the semantics and the errors; a durable a group binds again keeps its
// pause (Consume updates a durable's settings without touching it).
func (t *Transport) Pause(ctx context.Context, stream, durable string, until time.Time) error {
	if err := t.checkPause(stream, durable); err != nil {
		return err
	}
	if !until.After(time.Now()) {
		return fmt.Errorf("pause %s/%s: %w: until %s is not in the future", stream, durable, envelope.ErrInvalidConfig, until.UTC().Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.APITimeout)
	defer cancel()
	resp, err := t.js.PauseConsumer(ctx, stream, durable, until)
	if err != nil {
		return t.pauseErr("pause", stream, durable, err)
	}
	if !resp.Paused && until.After(time.Now()) {
		// A server without consumer pause answers the request without
		// pausing: refuse rather than report a pause that is not there.
		return &transport.Error{Op: "pause " + durable, Stream: stream, Kinds: []error{transport.ErrUnsupported},
			Hint: "the server did not pause the consumer: consumer pause needs nats-server 2.11 or later"}
	}
	return nil
}

// Resume resumes the durable at once (nats.go's ResumeConsumer). See
// transport.Pauser.
func (t *Transport) Resume(ctx context.Context, stream, durable string) error {
	if err := t.checkPause(stream, durable); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.APITimeout)
	defer cancel()
	if _, err := t.js.ResumeConsumer(ctx, stream, durable); err != nil {
		return t.pauseErr("resume", stream, durable, err)
	}
	return nil
}

func (t *Transport) checkPause(stream, durable string) error {
	if err := ValidateName(stream); err != nil {
		return fmt.Errorf("pause %s: %w: stream: %w", durable, envelope.ErrInvalidConfig, err)
	}
	if err := ValidateName(durable); err != nil {
		return fmt.Errorf("pause: %w: durable: %w", envelope.ErrInvalidConfig, err)
	}
	return nil
}

// pauseErr is a failed pause or resume request, in the module's kinds.
func (t *Transport) pauseErr(op, stream, durable string, err error) error {
	// A refused JetStream API call only times out in nats.go; the
	// connection's last error names the refused subject.
	err = explainPermission(t.nc, err, func(_, subject string) bool {
		return strings.HasPrefix(subject, t.cfg.APIPrefix+".")
	})
	err = explainNoJetStream(err)
	e := &transport.Error{Op: op + " " + durable, Stream: stream, Err: err}
	switch {
	case errors.Is(err, natsjs.ErrConsumerNotFound):
		e.Kinds = []error{transport.ErrNoConsumer}
		e.Hint = "no durable of that name on the stream: a router creates its group's durable when it runs"
	case errors.Is(err, natsjs.ErrStreamNotFound):
		e.Kinds = []error{transport.ErrNoStream}
	case isPermission(err):
		e.Kinds = []error{transport.ErrPermission}
		e.Hint = "the credentials may not use the JetStream API $JS.API.CONSUMER.PAUSE for it"
	case errors.Is(err, transport.ErrNoJetStream):
		e.Kinds = []error{transport.ErrNoJetStream}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		e.Kinds = []error{transport.ErrTimeout}
	}
	return e
}
