package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/inbox"
	"github.com/jetevents/events/outbox"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// TestInbox_with_outbox_consumes_and_publishes_in_one_transaction: a
// handler that writes and publishes a follow-up event through the outbox,
// in the inbox's transaction, does all three once (effect, record,
// follow-up) or none: its failed first attempt leaves no follow-up, the
// redelivery after a lost ack publishes none either, and the follow-up
// carries the conversation of the event that caused it.
func TestInbox_with_outbox_consumes_and_publishes_in_one_transaction(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := ctxT(t)
			in := newInbox(t, d)
			ob, err := outbox.New(d.db, outbox.Config{})
			require.NoError(t, err)
			require.NoError(t, ob.CreateSchema(ctx))
			b := newBench(t, 5)
			h := in.Handler(func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
				if err := insertEffect(ctx, d, tx, e, "handled"); err != nil {
					return err
				}
				next := envelope.NewEvent("resource.indexed", "indexer", e.OrganizationID, t0, map[string]interface{}{"of": e.ID})
				next.ID = "indexed-" + e.ID
				if err := ob.Publish(ctx, tx, "res.indexed", next); err != nil {
					return err
				}
				if del, _ := router.DeliveryFrom(ctx); del.Attempt == 1 {
					return errors.New("fails after publishing: nothing of it may remain")
				}
				return nil
			})
			b.router.Group("indexer", "res.created").On("resource.created", func(ctx context.Context, e *envelope.Event) error {
				if err := h(ctx, e); err != nil {
					return err
				}
				if del, _ := router.DeliveryFrom(ctx); del.Attempt == 2 {
					return errors.New("ack lost after the commit")
				}
				return nil
			})
			b.run(t)
			relay, err := outbox.NewRelay(ob, b.pub, outbox.RelayConfig{PollMax: 10 * time.Millisecond, Logger: watermill.NopLogger{}})
			require.NoError(t, err)
			rctx, stop := context.WithCancel(ctx)
			relayDone := make(chan error, 1)
			go func() { relayDone <- relay.Run(rctx) }()
			t.Cleanup(func() { stop(); <-relayDone })

			require.NoError(t, b.pub.Publish(ctx, "res.created", event("e1")))
			out := b.settled(t, 3)
			assert.Equal(t, router.ResultSkipped, out[2].Result)
			assert.Equal(t, transport.SkipDuplicate, out[2].Reason)
			require.Eventually(t, func() bool { return len(b.bus.Messages("res.indexed")) == 1 }, wait, time.Millisecond)
			assert.Equal(t, 1, effects(t, d, "e1"))
			_, pending, _, err := ob.Backlog(ctx)
			require.NoError(t, err)
			assert.Zero(t, pending)
			msg := b.bus.Messages("res.indexed")[0]
			assert.Equal(t, "e1", msg.Header["ce-causationid"][0], "caused by the handled event")
			assert.Equal(t, "e1", msg.Header["ce-correlationid"][0], "in its conversation")
			assert.Equal(t, inbox.Stats{Handled: 1, Duplicates: 1, Failed: 1}, in.Stats())
		})
	}
}
