package marshaler

import (
	"fmt"

	"github.com/jetevents/events/envelope"
)

// Config configures a Marshaler. The zero value is usable: New fills defaults.
type Config struct {
	// MaxSize bounds, in bytes, the envelope encoded or accepted and the
	// NATS message written (payload and headers, which NATS' max_payload
	// counts together). Default envelope.DefaultMaxSize (1 MiB, NATS' default
	// max_payload); set it to your server's max_payload if that differs.
	MaxSize int

	// SchemaMajors lists the schema_version majors a decoded event may have;
	// others fail with ErrUnknownSchemaMajor. Default [1]. A producer that moves
	// to 2.0 breaks its consumers until they opt in here.
	SchemaMajors []int

	// Source is the source of the events CQRS.Marshal builds (the service's
	// name, "auth-service"). Default "": required for CQRS use only, where an
	// event without a source fails with envelope.ErrMissingSource.
	Source string

	// OrganizationID is the organization of the events CQRS.Marshal builds,
	// unless CQRS.Stamp finds one in the context. Default "": none.
	OrganizationID string

	// Clock stamps the events CQRS.Marshal builds (the seed's TimeManager):
	// the marshaler never calls time.Now when one is given. Default
	// envelope.SystemClock.
	Clock envelope.Clock
}

func (c *Config) setDefaults() {
	if c.MaxSize == 0 {
		c.MaxSize = envelope.DefaultMaxSize
	}
	if c.SchemaMajors == nil {
		c.SchemaMajors = []int{1}
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.MaxSize < 0 {
		return fmt.Errorf("MaxSize %d is negative", c.MaxSize)
	}
	if len(c.SchemaMajors) == 0 {
		return fmt.Errorf("SchemaMajors is empty: no event would be accepted")
	}
	for _, m := range c.SchemaMajors {
		if m < 0 {
			return fmt.Errorf("SchemaMajors has negative major %d", m)
		}
	}
	return nil
}

// Marshaler converts between envelope.Event, Watermill messages and NATS
// messages. It is safe for concurrent use.
type Marshaler struct {
	cfg Config
}

// New returns a Marshaler with cfg's defaults filled in, or an error for an
// invalid cfg.
func New(cfg Config) (*Marshaler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("marshaler: %w: %w", envelope.ErrInvalidConfig, err)
	}
	// Own the slice: the caller may reuse theirs, and a Marshaler is shared
	// by goroutines.
	cfg.SchemaMajors = append([]int(nil), cfg.SchemaMajors...)
	return &Marshaler{cfg: cfg}, nil
}

// Default returns a Marshaler with the default configuration.
func Default() *Marshaler {
	m, _ := New(Config{})
	return m
}

// Config returns the configuration in use, defaults filled in.
func (m *Marshaler) Config() Config { return m.cfg }

func (m *Marshaler) acceptsMajor(major int) bool {
	for _, a := range m.cfg.SchemaMajors {
		if a == major {
			return true
		}
	}
	return false
}
