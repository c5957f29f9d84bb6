package metrics

import "sync"

// boundedLabel admits at most max distinct values of one label; later ones
// become OtherLabel, so that a producer sending ever new subjects, types or
// organizations cannot grow the metrics without bound. Safe for concurrent
// use; a value already admitted costs a read-locked map lookup.
type boundedLabel struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBoundedLabel(max int) *boundedLabel {
	return &boundedLabel{max: max, seen: make(map[string]struct{})}
}

func (b *boundedLabel) value(v string) string {
	b.mu.RLock()
	_, ok := b.seen[v]
	full := len(b.seen) >= b.max
	b.mu.RUnlock()
	switch {
	case ok:
		return v
	case full:
		return OtherLabel
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return OtherLabel
	}
	b.seen[v] = struct{}{}
	return v
}
