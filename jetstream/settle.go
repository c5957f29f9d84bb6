package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
)

// maxTermReason caps the reason sent with TermWithReason: it travels in an
// advisory, not as a place for whole error chains.
const maxTermReason = 256

// ack settles an acked message: a plain ack, or DoubleAck (bounded by
// AckWait: past it the server redelivers anyway) with AckSync.
func (sub *subscription) ack(msg natsjs.Msg, ml *msgLog) {
	if !sub.cfg.AckSync {
		sub.settleErr(msg.Ack(), "ack", msg)
		sub.trace("Message acked", ml)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sub.cfg.AckWait)
	defer cancel()
	sub.settleErr(msg.DoubleAck(ctx), "ack sync", msg)
	sub.trace("Message acked (confirmed)", ml)
}

// nack settles a nacked message: TermWithReason when marked with Terminate,
// else NakWithDelay with the NakWithDelay mark or the NakDelay policy.
func (sub *subscription) nack(wm *message.Message, dv *transport.Delivery, msg natsjs.Msg, attempt uint64, ml *msgLog) {
	reason, term := dv.Terminate()
	if !term {
		reason, term = wm.Metadata[MetadataTerminate]
	}
	if term {
		sub.settleErr(msg.TermWithReason(truncateReason(reason, maxTermReason)), "term", msg)
		if !sub.quiet {
			sub.log.Debug("Message terminated", ml.fields().Add(watermill.LogFields{"reason": reason}))
		}
		return
	}
	delay, marked := dv.NakDelay()
	if !marked {
		delay = sub.cfg.NakDelay(attempt)
	}
	if v, ok := wm.Metadata[MetadataNakDelay]; ok && !marked {
		d, err := time.ParseDuration(v)
		if err != nil {
			sub.log.Error("Invalid nak delay mark, using the NakDelay policy",
				fmt.Errorf("settle: %s %q: %w", MetadataNakDelay, v, err), ml.fields())
		} else {
			delay = d
		}
	}
	sub.nakAfter(msg, delay)
	if !sub.quiet {
		sub.log.Debug("Message nacked", ml.fields().Add(watermill.LogFields{"delay": delay.String()}))
	}
}

// nakAfter naks msg for redelivery after delay (at once when delay <= 0).
func (sub *subscription) nakAfter(msg natsjs.Msg, delay time.Duration) {
	if delay <= 0 {
		sub.settleErr(msg.Nak(), "nak", msg)
		return
	}
	sub.settleErr(msg.NakWithDelay(delay), "nak with delay", msg)
}

// undecodable handles a message the Unmarshaler refused (err matches
// ErrUndecodable). It is never acked: with an OnUndecodable hook that returns
// nil it is terminated (the hook stored it elsewhere), otherwise it is nacked
// with the NakDelay schedule, so it comes back until MaxDeliver and its
// advisory.
func (sub *subscription) undecodable(msg natsjs.Msg, jm *natsjs.MsgMetadata, err error) {
	attempt := deliveryAttempt(jm)
	fields := watermill.LogFields{"subject": msg.Subject(), "attempt": attempt}
	hook := sub.cfg.OnUndecodable
	if hook == nil {
		sub.log.Error("Undecodable message, nacked (no OnUndecodable hook)", err, fields)
		sub.nakAfter(msg, sub.cfg.NakDelay(attempt))
		return
	}
	// Like a handler's, the hook's ctx survives the stop and ends at the
	// close deadline: a shutdown must not fail a dead-letter publish under way.
	ctx, cancel := context.WithCancelCause(withRawMessage(sub.msgCtx, msg))
	stop := sub.keepAlive(msg, func() { cancel(errCloseDeadline(sub.cfg.CloseTimeout)) })
	herr := hook(ctx, msg, err)
	stop()
	cancel(nil)
	if herr != nil {
		sub.log.Error("OnUndecodable failed, message nacked", fmt.Errorf("%w (decoding: %w)", herr, err), fields)
		sub.nakAfter(msg, sub.cfg.NakDelay(attempt))
		return
	}
	sub.settleErr(msg.TermWithReason(truncateReason("undecodable: "+err.Error(), maxTermReason)), "term undecodable", msg)
	sub.log.Info("Undecodable message handed to OnUndecodable and terminated", fields)
}

// keepAlive sends InProgress for msg every InProgressInterval until the
// returned stop is called (which waits for the goroutine to end). Once the
// subscription stops, onDeadline is called CloseTimeout later (unless stop
// came first).
func (sub *subscription) keepAlive(msg natsjs.Msg, onDeadline func()) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(sub.cfg.InProgressInterval)
		defer t.Stop()
		stopped := sub.ctx.Done()
		var deadline <-chan time.Time
		for {
			select {
			case <-t.C:
				sub.settleErr(msg.InProgress(), "in progress", msg)
			case <-stopped:
				stopped = nil
				dt := time.NewTimer(sub.cfg.CloseTimeout)
				defer dt.Stop()
				deadline = dt.C
			case <-deadline:
				deadline = nil
				onDeadline()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// settleErr logs a failed settlement: there is no caller to return it to, and
// the server redelivers an unsettled message after AckWait, so it is not lost.
func (sub *subscription) settleErr(err error, op string, msg natsjs.Msg) {
	if err == nil {
		return
	}
	sub.log.Error("Cannot settle message", fmt.Errorf("settle %s: %w", op, err),
		watermill.LogFields{"subject": msg.Subject()})
}

func truncateReason(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
