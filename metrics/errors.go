package metrics

import "errors"

// ErrRegister is matched by New's error when a collector cannot be
// registered (a metric of the same name is already registered with other
// labels, or twice: give each Metrics its own Namespace or registry).
var ErrRegister = errors.New("metrics: cannot register collector")
