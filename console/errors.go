package console

import (
	"errors"

	"github.com/jetevents/events/envelope"
)

var (
	// ErrInvalidConfig: New refused the Config (the same value as every
	// package's ErrInvalidConfig).
	ErrInvalidConfig = envelope.ErrInvalidConfig

	// ErrWritesDisabled: a write (replay, purge, delete, cancel, pause)
	// reached a console whose Config.AllowWrites is false. Answered 403.
	ErrWritesDisabled = errors.New("console: writes are disabled")

	// ErrCSRF: a write without a valid CSRF token (a form of this console
	// carries one). Answered 403.
	ErrCSRF = errors.New("console: missing or invalid CSRF token")

	// ErrHostNotAllowed: a request whose Host is not in Config.AllowedHosts
	// (a DNS-rebinding attempt on a console bound to loopback). Answered 403.
	ErrHostNotAllowed = errors.New("console: host not allowed")
)
