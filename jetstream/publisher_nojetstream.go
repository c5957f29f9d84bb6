package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// jetStreamProbeTTL is how long the answer of a JetStream probe is reused:
// a burst of failed async publishes costs one request, and a server that
// gains JetStream is noticed within it.
const jetStreamProbeTTL = time.Second

// jetStreamProbe remembers the last answer to "does JetStream answer?".
type jetStreamProbe struct {
	mu      sync.Mutex
	at      time.Time
	missing bool
}

// noJetStream turns a publish error that blames a missing stream
// (transport.ErrNoStream: nothing answered the publish) into transport.ErrNoJetStream when the
// JetStream API does not answer either: to a publish, a server without
// JetStream looks like a subject no stream stores. It asks the server (an
// account info request, bounded by PublishTimeout) on that error path only;
// any other error, or a probe without an answer, is returned as it is.
func (p *Publisher) noJetStream(msg *nats.Msg, err error) error {
	if err == nil || !errors.Is(err, transport.ErrNoStream) || !p.jetStreamMissing() {
		return err
	}
	var cause error = natsjs.ErrNoStreamResponse
	if errors.Is(err, nats.ErrNoResponders) {
		cause = nats.ErrNoResponders
	}
	return fmt.Errorf("publish %s event %s: %w: %w: %s: %w",
		msg.Subject, msg.Header.Get(marshaler.HeaderMsgID), transport.ErrPublish, transport.ErrNoJetStream, noJetStreamAdvice, cause)
}

// jetStreamMissing reports whether the JetStream API says, or shows by not
// answering at all, that there is no JetStream for this connection.
func (p *Publisher) jetStreamMissing() bool {
	p.probe.mu.Lock()
	defer p.probe.mu.Unlock()
	if !p.probe.at.IsZero() && time.Since(p.probe.at) < jetStreamProbeTTL {
		return p.probe.missing
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PublishTimeout)
	defer cancel()
	_, err := p.js.AccountInfo(ctx)
	if err != nil && !jetStreamMissing(err) {
		return false // no answer (or another failure): nothing learnt, nothing remembered
	}
	p.probe.at, p.probe.missing = time.Now(), err != nil
	return p.probe.missing
}
