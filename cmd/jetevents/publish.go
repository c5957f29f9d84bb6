package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/transport"
)

// cmdPublish publishes one event through the library's publisher, exactly
// as a service would: the seed's envelope, the ce-* headers, Nats-Msg-Id =
// the event id, and a wait for the stream's ack. For checking a consumer
// end to end, and for replaying by hand.
func cmdPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("publish", stderr)
	cf := addConnFlags(fs)
	typ := fs.String("type", "", "event type, e.g. user.created (required)")
	data := fs.String("data", "{}", "event data: JSON, or @FILE to read it from a file")
	source := fs.String("source", "jetevents-cli", "event source (the producing service)")
	org := fs.String("org", "", "organization id")
	id := fs.String("id", "", "event id (default: a new UUID); publishing the same id again inside the stream's duplicates window is stored once")
	schema := fs.String("schema-version", envelope.DefaultSchemaVersion, "schema version of the data, MAJOR.MINOR")
	corr := fs.String("correlation-id", "", "correlation id (ce-correlationid)")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("publish", "give the SUBJECT to publish on, e.g. jetevents publish auth.user.created -type user.created -data '{\"user_id\":1}'")
	}
	subject := pos[0]
	if *typ == "" {
		return usageErr("publish", "-type is required (e.g. -type user.created)")
	}
	raw := []byte(*data)
	if strings.HasPrefix(*data, "@") {
		if raw, err = os.ReadFile((*data)[1:]); err != nil {
			return usageErr("publish", "-data %s: %v", *data, err)
		}
	}
	if !json.Valid(raw) {
		return usageErr("publish", "-data is not valid JSON: %s", abbreviate(string(raw), 60))
	}
	e := &envelope.Event{
		ID: *id, Type: *typ, Source: *source, OrganizationID: *org,
		Timestamp: time.Now().UTC(), SchemaVersion: *schema, Data: json.RawMessage(raw),
	}
	if e.ID == "" {
		e.ID = envelope.NewID()
	}
	if err := e.Validate(); err != nil {
		return opErr(fmt.Sprintf("the event is invalid: %s", oneLine(err.Error())), "fix -type, -source, -id or -schema-version", errUsage, err)
	}

	c, ctx, err := cf.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pub, err := jetstream.NewPublisher(c.nc, jetstream.PublisherConfig{Domain: c.domain})
	if err != nil {
		return c.explain(ctx, err, "creating the publisher")
	}
	defer func() { _ = pub.Close() }()
	if *corr != "" {
		ctx = envelope.WithCorrelationID(ctx, *corr)
	}
	rctx, cancel := c.reqCtx(ctx)
	defer cancel()
	ack, err := pub.PublishAck(rctx, subject, e)
	if err != nil {
		return c.publishErr(ctx, err, subject)
	}
	if ack.Duplicate {
		fmt.Fprintf(stdout, "event %s (%s) was already stored in %s at seq %d within its duplicates window: not stored again\n", e.ID, e.Type, ack.Stream, ack.Sequence)
		return nil
	}
	fmt.Fprintf(stdout, "published %s event %s on %s: stream %s seq %d\n", e.Type, e.ID, subject, ack.Stream, ack.Sequence)
	return nil
}

// publishErr explains a failed publish of the library's publisher.
func (c *conn) publishErr(ctx context.Context, err error, subject string) error {
	switch {
	case errors.Is(err, envelope.ErrInvalidSubject):
		return opErr(fmt.Sprintf("%q is not a subject one can publish on (no wildcards, spaces or empty tokens)", subject),
			"publish on a concrete subject, e.g. auth.user.created", errUsage, err)
	case errors.Is(err, transport.ErrNoStream):
		return opErr(fmt.Sprintf("no stream stores subject %s, so nothing would keep the event", subject),
			"add a stream whose subjects match it to your spec file and run 'jetevents streams apply -f FILE' ('jetevents streams list' shows what is stored)", errNotFound, err)
	case errors.Is(err, envelope.ErrTooLarge):
		return opErr(fmt.Sprintf("the event is too large for %s", subject), "send less data, or raise the stream's max_msg_size", err)
	}
	return c.explain(ctx, err, "publishing on "+subject)
}

// abbreviate cuts s to n runes with an ellipsis.
func abbreviate(s string, n int) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}
