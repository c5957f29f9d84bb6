package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jetevents/events/transport"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Why the connection's last error: a NATS server does not answer a message
// on a subject the user may not use; it sends the connection an
// asynchronous "-ERR Permissions Violation for Publish to ..." that
// nats.go (v1.55) hands to the error handler and keeps as nc.LastError().
// The request that hit it (a JetStream publish, a consumer create, a pull)
// only times out: context.DeadlineExceeded for a synchronous call,
// "timeout waiting for ack" for an async publish, ErrNoHeartbeat for a
// Consume. Joining the two is the only way to name the cause.

// PermissionError is transport.ErrPermission with what the server refused. Its text
// names the subject and the permission to grant; it never holds a
// credential (the server's violation text has none).
type PermissionError struct {
	// Op is what was refused: "publish", "publish with reply" (the reply
	// subject of a request) or "subscribe".
	Op string
	// Subject is the refused subject, as the server reported it.
	Subject string
	// Cause is what the operation itself returned (usually a timeout).
	Cause error

	violation error // nc.LastError(): matches nats.ErrPermissionViolation
}

// Error is a sentence: what failed, what the server refused, what to do.
func (e *PermissionError) Error() string {
	op := e.Op + " to"
	if e.Op == "subscribe" {
		op = "subscribe to"
	}
	msg := fmt.Sprintf("%v: this connection's user may not %s %q; %s", transport.ErrPermission, op, e.Subject, e.advice())
	if e.Cause != nil {
		msg += fmt.Sprintf(" (the operation itself ended with: %v)", e.Cause)
	}
	return msg
}

func (e *PermissionError) advice() string {
	inbox := strings.HasPrefix(e.Subject, nats.InboxPrefix)
	switch {
	case e.Op == "subscribe" && inbox:
		return `grant it subscribe permission on "_INBOX.>" (or the connection's inbox prefix): replies and publish acks arrive there, so an event may have been stored without its ack reaching the publisher`
	case e.Op == "publish with reply":
		return fmt.Sprintf("grant it publish permission with replies on %q (requests and JetStream publishes carry a reply subject)", e.Subject)
	case strings.HasPrefix(e.Subject, "$JS.API.CONSUMER.MSG.NEXT."):
		return fmt.Sprintf(`grant it publish permission on %q (or "$JS.API.>"): a consumer pulls its messages there`, e.Subject)
	case strings.HasPrefix(e.Subject, "$JS.API."):
		return fmt.Sprintf(`grant it publish permission on %q (or "$JS.API.>", the JetStream API)`, e.Subject)
	case e.Op == "subscribe":
		return fmt.Sprintf("grant it subscribe permission on %q", e.Subject)
	}
	return fmt.Sprintf("grant it publish permission on %q (in the server's authorization block, or the user's JWT: nsc edit user --allow-pub)", e.Subject)
}

// Unwrap makes a PermissionError match transport.ErrPermission, the nats.go violation
// (nats.ErrPermissionViolation) and its Cause.
func (e *PermissionError) Unwrap() []error {
	errs := []error{transport.ErrPermission}
	if e.violation != nil {
		errs = append(errs, e.violation)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// IsPermissionError reports whether err is a NATS permissions violation:
// it matches transport.ErrPermission, or nats.ErrPermissionViolation (as the
// connection's error handler and LastError report it).
func IsPermissionError(err error) bool {
	return errors.Is(err, transport.ErrPermission) || errors.Is(err, nats.ErrPermissionViolation)
}

// ExplainPermission returns err as a *PermissionError (matching
// transport.ErrPermission and err) when err is how a refused subject shows up on nc,
// a timeout (context deadline, nats.ErrTimeout, an async publish's ack
// timeout, or a Consume's ErrNoHeartbeat), and nc's last error is a
// permissions violation. Otherwise, or when err is nil or already a
// permission error, it returns err unchanged. Use it where a JetStream call
// on nc failed and the reason should be plain: creating or reading a
// consumer without publish permission on "$JS.API.CONSUMER.>" times out,
// pulling without it on "$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>"
// reports ErrNoHeartbeat. A violation stays nc's last error until another
// error or a reconnect replaces it, so a later unrelated timeout may be
// explained by it: call ExplainPermission only for operations that may have
// hit it.
func ExplainPermission(nc *nats.Conn, err error) error {
	return explainPermission(nc, err, nil)
}

// explainPermission is ExplainPermission restricted, when relevant is not
// nil, to violations it accepts.
func explainPermission(nc *nats.Conn, err error, relevant func(op, subject string) bool) error {
	if err == nil || nc == nil || IsPermissionError(err) || !timeoutLike(err) {
		return err
	}
	last := nc.LastError()
	if last == nil || !errors.Is(last, nats.ErrPermissionViolation) {
		return err
	}
	op, subject, ok := parseViolation(last.Error())
	if !ok || (relevant != nil && !relevant(op, subject)) {
		return err
	}
	return &PermissionError{Op: op, Subject: subject, Cause: err, violation: last}
}

func timeoutLike(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, natsjs.ErrAsyncPublishTimeout) || errors.Is(err, natsjs.ErrNoHeartbeat)
}

// violationRe matches nats-server's violation texts (client.go):
// `Permissions Violation for Publish to "s"`, `... for Publish with Reply
// of "s"`, `... for Subscription to "s"` (optionally followed by a queue).
var violationRe = regexp.MustCompile(`Permissions Violation for (Publish to|Publish with Reply of|Subscription to) ("(?:[^"\\]|\\.)*")`)

func parseViolation(text string) (op, subject string, ok bool) {
	m := violationRe.FindStringSubmatch(text)
	if m == nil {
		return "", "", false
	}
	subject, err := strconv.Unquote(m[2])
	if err != nil {
		return "", "", false
	}
	switch m[1] {
	case "Publish to":
		op = "publish"
	case "Publish with Reply of":
		op = "publish with reply"
	default:
		op = "subscribe"
	}
	return op, subject, true
}

// publishPermission explains a failed publish of msg by a violation about
// msg's subject, or about the inbox its ack comes back on.
func publishPermission(nc *nats.Conn, msg *nats.Msg, err error) error {
	return explainPermission(nc, err, func(op, subject string) bool {
		switch op {
		case "publish":
			return subject == msg.Subject
		case "publish with reply":
			return true // the reply subject is nats.go's, not ours to compare
		}
		prefix := nats.InboxPrefix
		if nc.Opts.InboxPrefix != "" {
			prefix = nc.Opts.InboxPrefix + "."
		}
		return strings.HasPrefix(subject, prefix)
	})
}
