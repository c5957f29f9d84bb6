package jetstream

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// Publisher defaults.
const (
	// DefaultMaxPending bounds async and batch publishes awaiting their ack.
	DefaultMaxPending = 4096
	// DefaultPublishTimeout bounds a synchronous Publish whose context has no
	// deadline (nats.go's own API default).
	DefaultPublishTimeout = 5 * time.Second
	// DefaultAckTimeout bounds the wait for the ack of an async or batch
	// publish, so that none stays pending forever (e.g. sent into the
	// reconnect buffer of a server that never comes back).
	DefaultAckTimeout = 10 * time.Second
	// DefaultPublisherCloseTimeout bounds Close's wait for pending acks.
	DefaultPublisherCloseTimeout = 30 * time.Second

	maxMaxPending = 1 << 20
)

// PublisherConfig configures a Publisher. The zero value is usable: every
// field has a documented default. Set it whole with WithPublisherConfig or
// field by field with the other PublisherOptions.
type PublisherConfig struct {
	// Marshaler encodes events (wire contract, max size). Default
	// marshaler.Default() (1 MiB max).
	Marshaler *marshaler.Marshaler

	// MaxPending bounds async and batch publishes awaiting their ack. When it
	// is reached PublishAsync blocks until an ack frees a slot or its context
	// ends (transport.ErrTooManyPending). Default DefaultMaxPending (4096).
	MaxPending int

	// PublishTimeout bounds Publish / PublishAck when the context has no
	// deadline. A context deadline always wins. Default DefaultPublishTimeout (5s).
	PublishTimeout time.Duration

	// AckTimeout bounds the wait for each async or batch ack; past it the
	// publish fails with transport.ErrTimeout (reported to OnAsyncError for
	// PublishAsync). Default DefaultAckTimeout (10s).
	AckTimeout time.Duration

	// CloseTimeout bounds Close's wait for pending acks. Default
	// DefaultPublisherCloseTimeout (30s).
	CloseTimeout time.Duration

	// OnAsyncError receives every PublishAsync whose ack failed or timed out,
	// exactly once, in a goroutine owned by the Publisher (one at a time, in
	// the order failures were seen). It may block or publish again; while it
	// runs, the failed publish keeps its pending slot. Default: log it at
	// error level with Logger.
	OnAsyncError func(AsyncError)

	// Logger logs async failures when OnAsyncError is nil. Default
	// watermill.NewSlogLogger(nil).
	Logger watermill.LoggerAdapter

	// Domain is the JetStream domain to publish in (leaf nodes, hubs).
	// Default empty: the connection's own account.
	Domain string

	// Observers are told about every publish, first to last, with its
	// outcome (see PublishObserver): metrics and tracing hooks. Default
	// none, and then nothing is called nor allocated for them.
	Observers []PublishObserver
}

func (c *PublisherConfig) setDefaults() {
	if c.Marshaler == nil {
		c.Marshaler = marshaler.Default()
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultPublisherCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = watermill.NewSlogLogger(nil)
	}
}

// Validate reports a configuration that cannot work. Errors match envelope.ErrInvalidConfig.
func (c PublisherConfig) Validate() error {
	switch {
	case c.MaxPending < 1 || c.MaxPending > maxMaxPending:
		return fmt.Errorf("%w: MaxPending %d not in 1..%d", envelope.ErrInvalidConfig, c.MaxPending, maxMaxPending)
	case c.PublishTimeout < 0:
		return fmt.Errorf("%w: negative PublishTimeout %s", envelope.ErrInvalidConfig, c.PublishTimeout)
	case c.AckTimeout < 0:
		return fmt.Errorf("%w: negative AckTimeout %s", envelope.ErrInvalidConfig, c.AckTimeout)
	case c.CloseTimeout < 0:
		return fmt.Errorf("%w: negative CloseTimeout %s", envelope.ErrInvalidConfig, c.CloseTimeout)
	}
	for i, o := range c.Observers {
		if o == nil {
			return fmt.Errorf("%w: Observers[%d] is nil", envelope.ErrInvalidConfig, i)
		}
	}
	return nil
}

// PublisherOption configures NewPublisher.
type PublisherOption func(*PublisherConfig)

// WithPublisherConfig replaces the whole configuration (options after it
// still apply).
func WithPublisherConfig(cfg PublisherConfig) PublisherOption {
	return func(c *PublisherConfig) { *c = cfg }
}

// WithMarshaler sets PublisherConfig.Marshaler.
func WithMarshaler(m *marshaler.Marshaler) PublisherOption {
	return func(c *PublisherConfig) { c.Marshaler = m }
}

// WithMaxPending sets PublisherConfig.MaxPending.
func WithMaxPending(n int) PublisherOption {
	return func(c *PublisherConfig) { c.MaxPending = n }
}

// WithPublishTimeout sets PublisherConfig.PublishTimeout.
func WithPublishTimeout(d time.Duration) PublisherOption {
	return func(c *PublisherConfig) { c.PublishTimeout = d }
}

// WithAckTimeout sets PublisherConfig.AckTimeout.
func WithAckTimeout(d time.Duration) PublisherOption {
	return func(c *PublisherConfig) { c.AckTimeout = d }
}

// WithCloseTimeout sets PublisherConfig.CloseTimeout.
func WithCloseTimeout(d time.Duration) PublisherOption {
	return func(c *PublisherConfig) { c.CloseTimeout = d }
}

// WithAsyncErrorHandler sets PublisherConfig.OnAsyncError.
func WithAsyncErrorHandler(h func(AsyncError)) PublisherOption {
	return func(c *PublisherConfig) { c.OnAsyncError = h }
}

// WithPublisherLogger sets PublisherConfig.Logger.
func WithPublisherLogger(l watermill.LoggerAdapter) PublisherOption {
	return func(c *PublisherConfig) { c.Logger = l }
}

// WithDomain sets PublisherConfig.Domain.
func WithDomain(domain string) PublisherOption {
	return func(c *PublisherConfig) { c.Domain = domain }
}

// WithPublishObserver appends observers to PublisherConfig.Observers (nil
// ones are skipped).
func WithPublishObserver(obs ...PublishObserver) PublisherOption {
	return func(c *PublisherConfig) {
		for _, o := range obs {
			if o != nil {
				c.Observers = append(c.Observers, o)
			}
		}
	}
}
