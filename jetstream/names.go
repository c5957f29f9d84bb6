package jetstream

import "github.com/jetevents/events/transport"

// ValidateName is transport.ValidateName, the module's one rule for stream
// and consumer names (errors match transport.ErrInvalidName).
func ValidateName(name string) error { return transport.ValidateName(name) }
