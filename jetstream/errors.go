package jetstream

import (
	"errors"
	"fmt"

	"github.com/jetevents/events/transport"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// noJetStreamAdvice ends every transport.ErrNoJetStream error: what to do about it.
const noJetStreamAdvice = "start nats-server with JetStream (-js), or give the account JetStream limits; with a JetStream domain, check it (nats account info)"

// jetStreamMissing reports whether err, the error of a JetStream API request
// ($JS.API...), says that no JetStream serves the request: the server's "not
// enabled" errors (for the server or the account), or nobody answering the
// API at all. A publish's "no responders" is not such an error: on a server
// with JetStream it means that no stream stores the subject (see
// Publisher.noJetStream).
func jetStreamMissing(err error) bool {
	return errors.Is(err, natsjs.ErrJetStreamNotEnabled) || errors.Is(err, natsjs.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders)
}

// explainNoJetStream returns err, the error of a JetStream API request,
// wrapped with transport.ErrNoJetStream and what to do when it says that JetStream is
// not there (jetStreamMissing); any other error is returned as it is.
func explainNoJetStream(err error) error {
	if err == nil || errors.Is(err, transport.ErrNoJetStream) || !jetStreamMissing(err) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", transport.ErrNoJetStream, noJetStreamAdvice, err)
}

// Stream and consumer spec failures. Every Validate error matches
// ErrInvalidSpec and envelope.ErrInvalidConfig, and the rule's own sentinel
// when there is one.
var (
	// ErrInvalidSpec is matched by every StreamSpec / ConsumerSpec / spec file error.
	ErrInvalidSpec = errors.New("invalid stream or consumer spec")
	// ErrBackOffTooLong: a consumer's BackOff has more entries than MaxDeliver.
	ErrBackOffTooLong = errors.New("backoff has more entries than max deliver")
	// ErrDuplicatesWindow: a stream's duplicates window is longer than its max age.
	ErrDuplicatesWindow = errors.New("duplicates window longer than max age")
)

// ErrApply is matched by every error Apply gets from the server while
// creating or updating a stream or consumer (the server's error is kept:
// errors.Is / errors.As on natsjs errors work).
var ErrApply = errors.New("cannot apply stream or consumer spec")
