package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jetevents/events/envelope"
)

// Timeout cancels the handler's context after d, like Watermill's
// middleware.Timeout, and then puts the message's previous context back.
//
// Watermill's Timeout leaves the message with the cancelled timeout context
// when the handler returns (its deferred cancel runs first), so every
// middleware outside it that uses msg.Context() afterwards (recording an
// idempotency key, publishing a dead letter, the subscriber's settle) would
// see "context canceled". The values already in the context (handler name,
// raw message, correlation ids) survive either way because the timeout
// context derives from it. d must be > 0; errors match envelope.ErrInvalidConfig.
func Timeout(d time.Duration) (message.HandlerMiddleware, error) {
	if d <= 0 {
		return nil, fmt.Errorf("%w: timeout %s must be > 0", envelope.ErrInvalidConfig, d)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			parent := msg.Context()
			ctx, cancel := context.WithTimeout(parent, d)
			msg.SetContext(ctx)
			defer func() {
				cancel()
				msg.SetContext(parent)
			}()
			return h(msg)
		}
	}, nil
}
