package subscriber

import (
	"errors"

	"github.com/jetevents/events/transport"
)

// Errors of the Subscriber. They are the transport seam's sentinels where
// the meaning is the same, so that one errors.Is works on every transport.
var (
	// ErrInvalidConfig: a Config or topic the Subscriber cannot use.
	ErrInvalidConfig = transport.ErrInvalidConfig
	// ErrClosed: Subscribe or SubscribeInitialize after Close.
	ErrClosed = transport.ErrClosed
	// ErrCloseTimeout: Close had to nack sent messages at the close
	// deadline (they are redelivered).
	ErrCloseTimeout = transport.ErrCloseTimeout
	// ErrUndecodable: the Unmarshaler refused a message (OnUndecodable's
	// err matches it).
	ErrUndecodable = errors.New("undecodable message")
)
