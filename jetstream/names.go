package jetstream

import (
	"fmt"
	"unicode"
)

// ValidateName applies the server's rules for stream and consumer (durable)
// names: not empty, no '.', '*', '>', '/', '\\', whitespace or non-printable
// character. Errors match ErrInvalidName. It is the one name rule of the
// module: specs, the subscriber, the transport and the router all use it.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	for _, r := range name {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidName, name, r)
		}
	}
	return nil
}
