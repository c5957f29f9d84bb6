package router

import (
	"strconv"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// OrderKey returns the order key of an event: events with the same key are
// handled one at a time, in stream order (GroupConfig.OrderKey). Keep it a
// pure function of the event: every process of a group must read the same
// key from the same event.
type OrderKey func(e *envelope.Event) string

// KeyOrganization orders by organization: one event of an organization at
// a time.
func KeyOrganization(e *envelope.Event) string { return e.OrganizationID }

// KeyType orders by event type: one user.created at a time, in stream
// order (a subject carries its event's type, as auth.user.created carries
// user.created, so this is also the order per subject).
func KeyType(e *envelope.Event) string { return e.Type }

// KeyDataField orders by a field of the event's data: KeyDataField("user_id")
// handles the events of one user one at a time. A number keeps its exact
// decimal text; an event whose data has no such field (or is not an
// object) is keyed by its type alone (a key no field value can take).
func KeyDataField(field string) OrderKey {
	return func(e *envelope.Event) string {
		m, err := e.DataMap()
		if err != nil {
			return "\x00type:" + e.Type
		}
		switch v := m[field].(type) {
		case string:
			return v
		case nil:
			return "\x00type:" + e.Type
		case interface{ String() string }: // json.Number
			return v.String()
		case bool:
			return strconv.FormatBool(v)
		default:
			return "\x00type:" + e.Type
		}
	}
}

// orderKeyOf is the consume pipeline's key of a delivery: the group's
// OrderKey of its event, decoded once here (the worker reuses it). A
// message that does not decode gets a key of its own: it is dead-lettered
// at once and must hold no other event back.
func (gr *groupRun) orderKeyOf(d *transport.Delivery) string {
	c := gr.decodeOnce(d)
	if c.event == nil {
		return "\x00undecodable:" + d.Stream + ":" + strconv.FormatUint(d.StreamSeq, 10)
	}
	key := gr.g.cfg.OrderKey(c.event)
	if gr.unitKey != nil {
		gr.unitKey(d, key)
	}
	return key
}
