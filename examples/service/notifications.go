package service

import (
	"context"
	"errors"
	"fmt"

	events "github.com/jetevents/events"
)

// The consumer side of the service: when a resource is created, the
// organization's admins are mailed and notification.sent is published. The
// handler knows neither the transport nor the server: its unit tests run it
// in a router on the in-memory bus (notifications_test.go), its integration
// test the very same handler on an embedded JetStream server
// (notifications_integration_test.go).

// ErrBadRecipient is a Mailer's refusal that retrying cannot fix.
var ErrBadRecipient = errors.New("bad recipient")

// Mailer sends mail; the production one talks SMTP.
type Mailer interface {
	Send(ctx context.Context, to, subject string) error
}

// ResourceCreated is the data of resource.created, as CreateResource
// publishes it.
type ResourceCreated struct {
	ResourceID string `json:"resource_id"`
	Type       string `json:"type"`
}

// Notifier handles resource.created.
type Notifier struct {
	mailer      Mailer
	publisher   events.Publisher
	timeManager TimeManager
}

// NewNotifier returns a Notifier mailing with m and publishing with p.
func NewNotifier(m Mailer, p events.Publisher, tm TimeManager) *Notifier {
	return &Notifier{mailer: m, publisher: p, timeManager: tm}
}

// Group is the Notifier's durable consumer and the subjects it reads.
const (
	Group         = "notifications"
	GroupSubjects = "my-service.resource.>"
)

// Register adds the Notifier's group to r.
func (n *Notifier) Register(r *events.Router) *events.Group {
	return events.Handle(r.Group(Group, GroupSubjects), "resource.created", n.OnResourceCreated)
}

// OnResourceCreated mails the organization's admins, then publishes
// notification.sent in the same conversation (ctx carries the correlation
// id). A transient mail failure is returned as it is: the broker redelivers
// the event after the backoff. A bad recipient is permanent: the event goes
// to the dead-letter stream at once.
func (n *Notifier) OnResourceCreated(ctx context.Context, e *events.Event, d ResourceCreated) error {
	to := "admins@" + e.OrganizationID + ".example"
	if err := n.mailer.Send(ctx, to, fmt.Sprintf("New %s %s", d.Type, d.ResourceID)); err != nil {
		if errors.Is(err, ErrBadRecipient) {
			return events.Permanent(err)
		}
		return fmt.Errorf("mail %s: %w", to, err)
	}
	sent := events.NewEvent("notification.sent", "my-service", e.OrganizationID, n.timeManager.Now(), map[string]interface{}{
		"resource_id": d.ResourceID,
		"to":          to,
	})
	return n.publisher.Publish(ctx, "my-service.notification.sent", sent)
}
