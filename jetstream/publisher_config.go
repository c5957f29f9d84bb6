package jetstream

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/partition"
)

// Publisher defaults.
const (
	// defaultMaxPending bounds async and batch publishes awaiting their ack.
	defaultMaxPending = 4096
	// defaultPublishTimeout bounds a synchronous Publish whose context has no
	// deadline (nats.go's own API default).
	defaultPublishTimeout = 5 * time.Second
	// defaultAckTimeout bounds the wait for the ack of an async or batch
	// publish, so that none stays pending forever (e.g. sent into the
	// reconnect buffer of a server that never comes back).
	defaultAckTimeout = 10 * time.Second
	// defaultPublisherCloseTimeout bounds Close's wait for pending acks.
	defaultPublisherCloseTimeout = 30 * time.Second

	maxMaxPending = 1 << 20
)

// PublisherConfig configures a Publisher (NewPublisher(nc, cfg)). The zero
// value is usable: every field has a documented default.
type PublisherConfig struct {
	// Marshaler encodes events (wire contract, max size). Default
	// marshaler.Default() (1 MiB max).
	Marshaler *marshaler.Marshaler

	// MaxPending bounds async and batch publishes awaiting their ack. When it
	// is reached PublishAsync blocks until an ack frees a slot or its context
	// ends (transport.ErrTooManyPending). Default defaultMaxPending (4096).
	MaxPending int

	// PublishTimeout bounds Publish / PublishAck when the context has no
	// deadline. A context deadline always wins. Default defaultPublishTimeout (5s).
	PublishTimeout time.Duration

	// AckTimeout bounds the wait for each async or batch ack; past it the
	// publish fails with transport.ErrTimeout (reported to OnAsyncError for
	// PublishAsync). Default defaultAckTimeout (10s).
	AckTimeout time.Duration

	// CloseTimeout bounds Close's wait for pending acks. Default
	// defaultPublisherCloseTimeout (30s).
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

	// Partitions place the events published on the subjects they cover in
	// their key's partition (package partition: auth.user.created becomes
	// auth.p7.user.created, with the Jetevents-Partition header), for
	// partitioned groups (router.GroupConfig.Partitions) to read. Share each
	// Spec value with the groups. The first spec that covers a subject
	// applies; other subjects are published as they are. Default none.
	Partitions []partition.Spec
}

func (c *PublisherConfig) setDefaults() {
	if c.Marshaler == nil {
		c.Marshaler = marshaler.Default()
	}
	if c.MaxPending == 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = defaultAckTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultPublisherCloseTimeout
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
	return partition.Specs(c.Partitions).Validate()
}

// onePublisherConfig is the config given to NewPublisher: none (the zero
// value: every default) or one.
func onePublisherConfig(config []PublisherConfig) (PublisherConfig, error) {
	switch len(config) {
	case 0:
		return PublisherConfig{}, nil
	case 1:
		return config[0], nil
	}
	return PublisherConfig{}, fmt.Errorf("jetstream publisher: %w: %d configs given, at most one", envelope.ErrInvalidConfig, len(config))
}
