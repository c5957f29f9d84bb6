package middleware

import "errors"

// PermanentError marks an error that retrying cannot fix (invalid input, a
// business rule violation): the retry decision skips the remaining
// deliveries and the message is dead-lettered at once with reason
// "permanent". Build it with Permanent.
type PermanentError struct {
	// Err is the cause; errors.Is and errors.As reach it through Unwrap.
	Err error
}

// Error returns the cause's text unchanged, so logs and the dead letter's
// error header read as the handler wrote them.
func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent error"
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrPermanent) true for every permanent error.
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent wraps err so that IsPermanent reports true for it and for every
// error that wraps it. Permanent(nil) is nil, and an error that is already
// permanent is returned as is. The root package re-exports it as
// events.Permanent.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or any error it wraps (fmt.Errorf %w,
// errors.Join), was made with Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
