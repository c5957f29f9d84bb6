package jetstream

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Lease renewals of a pull consumer's deliveries: each is a request whose
// reply confirms it, and only a confirmed renewal moves the delivery's
// lease (transport.Delivery.LeaseStart).

// leaseWait is a renewal sent and not yet confirmed.
type leaseWait struct {
	d    *jsDelivery
	sent time.Time
}

// renew sends a lease renewal of d as a request whose reply lands on the
// lease inbox.
func (c *pullConsumer) renew(d *jsDelivery) error {
	sent := time.Now()
	c.leaseMu.Lock()
	c.leaseID++
	id := c.leaseID
	c.leases[id] = leaseWait{d: d, sent: sent}
	c.leaseMu.Unlock()
	var buf [64]byte
	reply := strconv.AppendUint(append(append(buf[:0], c.leaseInbox...), '.'), id, 10)
	err := c.t.nc.PublishRequest(d.reply, string(reply), ackInProgress)
	if err != nil {
		c.leaseMu.Lock()
		delete(c.leases, id)
		c.leaseMu.Unlock()
	}
	return err
}

// onLeaseReply records a confirmed renewal.
func (c *pullConsumer) onLeaseReply(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 10, 64)
	if err != nil {
		return
	}
	c.leaseMu.Lock()
	w, ok := c.leases[id]
	delete(c.leases, id)
	c.leaseMu.Unlock()
	if ok {
		w.d.Renewed(w.sent)
	}
}

// pruneLeases forgets renewals unanswered for longer than AckWait: their
// lease has run out either way.
func (c *pullConsumer) pruneLeases() {
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	for id, w := range c.leases {
		if time.Since(w.sent) > c.spec.AckWait {
			delete(c.leases, id)
		}
	}
}
