package router

import (
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
)

// This is the router's only file that knows JetStream: New builds the
// jetstream transport on a connection and hands it to NewWithTransport.
// Every other file runs on the transport seam (package transport), so that
// the router runs the same on the in-memory bus.

// New returns a Router consuming cfg.Stream on nc through JetStream durable
// pull consumers (jetstream.Transport). It never closes nc. Configuration
// errors match envelope.ErrInvalidConfig.
func New(nc *nats.Conn, cfg Config) (*Router, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := jetstream.NewTransport(nc, jetstream.TransportConfig{
		Heartbeat:        cfg.Heartbeat,
		MemberTTL:        cfg.MemberTTL,
		DeadLetterStream: cfg.DeadLetter.Stream,
		Logger:           cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("router transport: %w", err)
	}
	return NewWithTransport(tr, cfg)
}
