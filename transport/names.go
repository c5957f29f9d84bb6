package transport

import (
	"errors"
	"fmt"
	"unicode"
)

// ErrInvalidName: a stream or consumer (durable) name is empty or contains
// '.', '*', '>', '/', '\\', whitespace or a non-printable character.
var ErrInvalidName = errors.New("invalid stream or consumer name")

// ValidateName applies the server's rules for stream and consumer (durable)
// names: not empty, no '.', '*', '>', '/', '\\', whitespace or non-printable
// character. Errors match ErrInvalidName. It is the one name rule of the
// module: specs, the subscriber, the transports, the dead-letter config and
// the router all use it.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	for _, r := range name {
		if !NameRune(r) {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidName, name, r)
		}
	}
	return nil
}

// NameRune reports whether r may appear in a stream or consumer name.
func NameRune(r rune) bool {
	return !(r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r))
}
