package metrics

import "errors"

// ErrInvalidConfig is matched by New's configuration errors.
var ErrInvalidConfig = errors.New("metrics: invalid config")

// ErrRegister is matched by New's error when a collector cannot be
// registered (a metric of the same name is already registered with other
// labels, or twice: give each Metrics its own Namespace or registry).
var ErrRegister = errors.New("metrics: cannot register collector")
