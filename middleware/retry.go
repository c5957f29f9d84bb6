package middleware

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// DefaultMaxDeliver is the retry decision's default MaxDeliver: the
// subscriber's default.
const DefaultMaxDeliver = 5

// RetryConfig configures Retry.
type RetryConfig struct {
	// MaxDeliver is the number of handler attempts: on that delivery a
	// failing handler gets no further attempt and the message is
	// dead-lettered (ReasonMaxDeliver). The consumer's server-side
	// MaxDeliver must be unlimited (the router's is) or above it, so that a
	// failed dead-letter publish is retried. Default 5; -1 means unlimited
	// (never dead-letter for exhausted attempts).
	MaxDeliver int
	// Backoff is the delay before the next delivery after a failed attempt,
	// asked of the broker with NakWithDelay. Default: the zero Backoff (1s
	// doubling to 1m, ±20%).
	Backoff transport.Backoff
}

func (c *RetryConfig) setDefaults() {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c RetryConfig) Validate() error {
	if c.MaxDeliver < -1 || c.MaxDeliver == 0 {
		return fmt.Errorf("%w: MaxDeliver %d must be >= 1 or -1 (unlimited)", envelope.ErrInvalidConfig, c.MaxDeliver)
	}
	if err := c.Backoff.Validate(); err != nil {
		return fmt.Errorf("Backoff: %w", err)
	}
	return nil
}

// Retry is the retry decision. The consumer never sleeps to retry: a failed
// delivery is Nacked and the broker redelivers it after the delay (the
// subscriber's NakWithDelay). Safe for concurrent use.
type Retry struct {
	cfg RetryConfig
}

// NewRetry returns the retry decision configured by cfg. Errors match
// envelope.ErrInvalidConfig.
func NewRetry(cfg RetryConfig) (*Retry, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Retry{cfg: cfg}, nil
}

// Middleware decides what a handler error means for the delivery:
//   - an error that already carries a verdict (Classify: DeadLetter,
//     Permanent, unmarshal, schema version) is returned as is, for the
//     DeadLetterer middleware outside to publish;
//   - on the last delivery (attempt >= MaxDeliver) the error becomes the
//     verdict DeadLetter(ReasonMaxDeliver, err);
//   - a delivery past MaxDeliver (the consumer may keep extra deliveries to
//     retry a failed dead-letter publish) does not call the handler: it is
//     the verdict DeadLetter(ReasonMaxDeliver, ErrAttemptsExhausted);
//   - otherwise the message is marked for redelivery after Backoff.Delay(attempt)
//     and the error is returned, so that the router Nacks it.
//
// A context.Canceled error while the message's context is done (shutdown)
// is never turned into a verdict: a cancelled attempt says nothing about the
// message. It is retried; if it was the last delivery, the next one is past
// MaxDeliver and dead-lettered without calling the handler (the consumer's
// server-side MaxDeliver must be unlimited or above MaxDeliver for that
// delivery to come: the router's is unlimited).
// The messages a failed handler produced are dropped.
func (r *Retry) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if attempt := deliveryOf(msg).Attempt; r.beyond(attempt) {
			// The consumer keeps a few deliveries past MaxDeliver only to
			// retry a dead-letter publish that failed on the last one: the
			// handler had all its attempts.
			return nil, DeadLetter(ReasonMaxDeliver, fmt.Errorf("delivery %d after %d handler attempts: %w", attempt, r.cfg.MaxDeliver, ErrAttemptsExhausted))
		}
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		if _, ok := Classify(err); ok {
			return nil, err
		}
		attempt := deliveryOf(msg).Attempt
		cancelled := errors.Is(err, context.Canceled) && msg.Context().Err() != nil
		if !cancelled && r.last(attempt) {
			return nil, DeadLetter(ReasonMaxDeliver, fmt.Errorf("attempt %d of %d: %w", attempt, r.cfg.MaxDeliver, err))
		}
		setVerdict(msg, transport.Retry(r.cfg.Backoff.Delay(attempt), err))
		return nil, err
	}
}

// beyond reports whether attempt is past MaxDeliver (a delivery kept by the
// consumer to retry a failed dead-letter publish).
func (r *Retry) beyond(attempt uint64) bool {
	return r.cfg.MaxDeliver > 0 && attempt > uint64(r.cfg.MaxDeliver)
}

// last reports whether attempt is the consumer's last delivery. An unknown
// attempt (0: the message did not come from the jetstream subscriber) is
// never the last: the transport decides.
func (r *Retry) last(attempt uint64) bool {
	return r.cfg.MaxDeliver > 0 && attempt >= uint64(r.cfg.MaxDeliver)
}
