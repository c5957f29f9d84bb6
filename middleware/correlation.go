package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// CorrelationConfig configures Correlation.
type CorrelationConfig struct {
	// NewID makes a correlation id for an event that arrives without one (the
	// first event of a conversation). Default nil: the event's own id, so
	// that every redelivery of the event, in any process, starts the same
	// conversation.
	NewID func() string
}

func (c *CorrelationConfig) setDefaults() {}

// Validate reports an unusable configuration (nothing can be wrong after
// defaults; kept for the package's constructor pattern).
func (c CorrelationConfig) Validate() error { return nil }

// Correlation carries the conversation through handlers: the correlation id
// is read from the incoming message (metadata correlation_id, decoded from
// the ce-correlationid header) or created at entry, and the causation id is
// the handled event's id (ce-id metadata, else the message UUID). Safe for
// concurrent use.
type Correlation struct {
	cfg CorrelationConfig
}

// NewCorrelation returns the correlation middleware configured by cfg.
func NewCorrelation(cfg CorrelationConfig) (*Correlation, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Correlation{cfg: cfg}, nil
}

// Middleware puts the correlation and causation ids in the handler's context
// (envelope.WithCorrelationID / WithCausationID), so that every event the
// handler publishes with that context (events.Publisher, the CQRS bus) carries
// them as ce-correlationid and ce-causationid. A created correlation id is
// also set on the incoming message's metadata, for the middleware outside
// (logging). The messages the handler returns get the correlation_id and
// ce-causationid metadata unless they already have their own.
func (c *Correlation) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		corr := msg.Metadata.Get(marshaler.MetadataCorrelationID)
		cause := eventID(msg)
		if corr == "" {
			corr = cause
			if c.cfg.NewID != nil {
				corr = c.cfg.NewID()
			}
			msg.Metadata.Set(marshaler.MetadataCorrelationID, corr)
		}
		msg.SetContext(envelope.WithRelations(msg.Context(), corr, cause))

		out, err := h(msg)
		for _, m := range out {
			if m == nil {
				continue
			}
			if m.Metadata == nil {
				m.Metadata = make(message.Metadata, 2)
			}
			if m.Metadata.Get(marshaler.MetadataCorrelationID) == "" {
				m.Metadata.Set(marshaler.MetadataCorrelationID, corr)
			}
			if m.Metadata.Get(marshaler.MetadataCausationID) == "" {
				m.Metadata.Set(marshaler.MetadataCausationID, cause)
			}
		}
		return out, err
	}
}
