package memory

import "github.com/jetevents/events/transport"

// Idle reports whether c has handed every delivery assigned to it to its
// sink (tests wait for it before asserting that nothing more came).
func Idle(c transport.Consumer) bool {
	mc := c.(*consumer)
	mc.b.mu.Lock()
	defer mc.b.mu.Unlock()
	return len(mc.outbox) == 0 && !mc.handing
}
