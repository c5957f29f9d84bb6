package console

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Pauser pauses and resumes a group's durable: the extension point of the
// group page's pause and resume buttons. The default is JetStream's own
// consumer pause through nats.go (PauseConsumer, ResumeConsumer; nats-server
// 2.11 or later): the server delivers nothing to the durable until the
// time passes or it is resumed, and its info says Paused with the time
// remaining, which the pages show whoever paused it (a router that starts
// again and updates the durable to its group's config leaves the pause: the
// server keeps it). A service serving the console beside its router may give
// the router's own, r.StreamPauser() (router.StreamPauser), as
// Config.Pauser: pauses then go through Router.Pause and Resume (logged by
// the router, on whichever transport it runs), and only its groups can be
// paused.
type Pauser interface {
	// Pause stops deliveries to the durable until until.
	Pause(ctx context.Context, stream, group string, until time.Time) error
	// Resume delivers again at once.
	Resume(ctx context.Context, stream, group string) error
}

// jetStreamPauser is the default Pauser.
type jetStreamPauser struct{ js natsjs.JetStream }

func (p jetStreamPauser) Pause(ctx context.Context, stream, group string, until time.Time) error {
	resp, err := p.js.PauseConsumer(ctx, stream, group, until)
	if err != nil {
		return fmt.Errorf("pause %s/%s: %w", stream, group, err)
	}
	if !resp.Paused {
		return fmt.Errorf("pause %s/%s: the server did not pause it (nats-server 2.11 or later pauses consumers)", stream, group)
	}
	return nil
}

func (p jetStreamPauser) Resume(ctx context.Context, stream, group string) error {
	if _, err := p.js.ResumeConsumer(ctx, stream, group); err != nil {
		return fmt.Errorf("resume %s/%s: %w", stream, group, err)
	}
	return nil
}
