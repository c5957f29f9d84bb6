package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Server defaults that a zero spec field stands for. They are written out so
// that a spec with a zero field compares equal to what the server reports.
const (
	serverDefaultDuplicates    = 2 * time.Minute
	serverDefaultAckWait       = 30 * time.Second
	serverDefaultMaxAckPending = 1000
)

// Action says what Apply did with one spec.
type Action string

// Actions reported by Apply.
const (
	// Created: the stream or consumer did not exist and was created.
	Created Action = "created"
	// Updated: it existed with other settings, now those of the spec (Fields
	// says which).
	Updated Action = "updated"
	// Unchanged: it already had the spec's settings; nothing was sent.
	Unchanged Action = "unchanged"
)

// FieldChange is one setting an update changed, with values as text.
type FieldChange struct {
	Field    string
	From, To string
}

// Change is what Apply did with one spec.
type Change struct {
	// Kind is "stream" or "consumer".
	Kind string
	// Name is the stream name, or "STREAM/DURABLE" for a consumer.
	Name   string
	Action Action
	// Fields lists the settings an update changed (empty unless Updated).
	Fields []FieldChange
}

// String reads like `stream AUTH_EVENTS: updated (max_age: 720h0m0s -> 168h0m0s)`.
func (c Change) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", c.Kind, c.Name, c.Action)
	if len(c.Fields) > 0 {
		b.WriteString(" (")
		for i, f := range c.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s -> %s", f.Field, f.From, f.To)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Changes is what Apply did, one entry per spec, in the order applied.
type Changes []Change

// Changed reports whether anything was created or updated.
func (cs Changes) Changed() bool {
	for _, c := range cs {
		if c.Action != Unchanged {
			return true
		}
	}
	return false
}

// String is one Change per line.
func (cs Changes) String() string {
	lines := make([]string, len(cs))
	for i, c := range cs {
		lines[i] = c.String()
	}
	return strings.Join(lines, "\n")
}

// Apply makes the server match the specs: it creates what is missing,
// updates what differs and leaves the rest alone, so it is safe to run at
// every start-up and from scripts. All specs are validated before anything
// is sent; streams are applied before consumers. Only the settings a spec
// declares are compared and changed: a setting made by other tools (e.g.
// max_msgs, discard policy) is kept. On a server error Apply stops and
// returns what it did so far with an error matching ErrApply (and the
// server's error: settings the server cannot change, such as storage or
// deliver policy, surface here).
func Apply(ctx context.Context, js natsjs.JetStream, specs ...Spec) (Changes, error) {
	if js == nil {
		return nil, fmt.Errorf("jetstream apply: %w: nil JetStream", ErrInvalidConfig)
	}
	norm, err := normalizeSpecs(specs)
	if err != nil {
		return nil, fmt.Errorf("jetstream apply: %w", err)
	}
	changes := make(Changes, 0, len(norm))
	for _, sp := range norm {
		var ch Change
		switch s := sp.(type) {
		case StreamSpec:
			ch, err = applyStream(ctx, js, s)
		case ConsumerSpec:
			ch, err = applyConsumer(ctx, js, s)
		}
		if err != nil {
			return changes, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

func applyErr(kind, name, op string, err error) error {
	return fmt.Errorf("jetstream apply: %w: %s %s: %s: %w", ErrApply, kind, name, op, err)
}

// config is the stream configuration the spec stands for, defaults written out.
func (s StreamSpec) config() natsjs.StreamConfig {
	c := natsjs.StreamConfig{
		Name:        s.Name,
		Description: s.Description,
		Subjects:    slices.Clone(s.Subjects),
		Storage:     s.Storage,
		Retention:   s.Retention,
		Replicas:    max(s.Replicas, 1),
		MaxAge:      s.MaxAge,
		MaxBytes:    s.MaxBytes,
		MaxMsgSize:  s.MaxMsgSize,
		Duplicates:  s.Duplicates,
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = -1
	}
	if c.Duplicates == 0 {
		// The server's rule: 2 minutes, or the max age when shorter.
		c.Duplicates = serverDefaultDuplicates
		if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	return c
}

func applyStream(ctx context.Context, js natsjs.JetStream, s StreamSpec) (Change, error) {
	ch := Change{Kind: "stream", Name: s.Name}
	want := s.config()
	for attempt := 0; ; attempt++ {
		st, err := js.Stream(ctx, s.Name)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, want)
			if errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created meanwhile by someone else: compare and update
			}
			if err != nil {
				return ch, applyErr("stream", s.Name, "create", err)
			}
			ch.Action = Created
			return ch, nil
		}
		if err != nil {
			return ch, applyErr("stream", s.Name, "look up", err)
		}
		cur := st.CachedInfo().Config
		ch.Fields = diffStream(cur, want)
		if len(ch.Fields) == 0 {
			ch.Action = Unchanged
			return ch, nil
		}
		upd := cur
		upd.Description = want.Description
		upd.Subjects = want.Subjects
		upd.Storage = want.Storage
		upd.Retention = want.Retention
		upd.Replicas = want.Replicas
		upd.MaxAge = want.MaxAge
		upd.MaxBytes = want.MaxBytes
		upd.MaxMsgSize = want.MaxMsgSize
		upd.Duplicates = want.Duplicates
		if _, err := js.UpdateStream(ctx, upd); err != nil {
			return ch, applyErr("stream", s.Name, "update "+fieldNames(ch.Fields), err)
		}
		ch.Action = Updated
		return ch, nil
	}
}

// differ collects FieldChanges.
type differ []FieldChange

func (d *differ) add(field, from, to string) {
	if from != to {
		*d = append(*d, FieldChange{Field: field, From: from, To: to})
	}
}

func diffStream(cur, want natsjs.StreamConfig) []FieldChange {
	var d differ
	d.add("description", quote(cur.Description), quote(want.Description))
	d.add("subjects", listText(cur.Subjects), listText(want.Subjects))
	d.add("storage", storageNames[cur.Storage], storageNames[want.Storage])
	d.add("retention", retentionNames[cur.Retention], retentionNames[want.Retention])
	d.add("replicas", fmt.Sprint(max(cur.Replicas, 1)), fmt.Sprint(want.Replicas))
	d.add("max_age", cur.MaxAge.String(), want.MaxAge.String())
	d.add("max_bytes", limitText(cur.MaxBytes), limitText(want.MaxBytes))
	d.add("max_msg_size", limitText(int64(cur.MaxMsgSize)), limitText(int64(want.MaxMsgSize)))
	d.add("duplicates", cur.Duplicates.String(), want.Duplicates.String())
	return d
}

// config is the consumer configuration the spec stands for, defaults written out.
func (c ConsumerSpec) config() natsjs.ConsumerConfig {
	cfg := natsjs.ConsumerConfig{
		Durable:       c.Durable,
		Description:   c.Description,
		DeliverPolicy: c.DeliverPolicy,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		BackOff:       slices.Clone(c.BackOff),
		MaxAckPending: c.MaxAckPending,
	}
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		cfg.FilterSubject = c.FilterSubjects[0]
	default:
		cfg.FilterSubjects = slices.Clone(c.FilterSubjects)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = serverDefaultAckWait
		if len(cfg.BackOff) > 0 {
			cfg.AckWait = cfg.BackOff[0] // what the server does with a BackOff
		}
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = serverDefaultMaxAckPending
	}
	return cfg
}

func applyConsumer(ctx context.Context, js natsjs.JetStream, c ConsumerSpec) (Change, error) {
	ch := Change{Kind: "consumer", Name: c.Key()}
	want := c.config()
	for attempt := 0; ; attempt++ {
		cons, err := js.Consumer(ctx, c.Stream, c.Durable)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			return ch, applyErr("consumer", ch.Name, "look up", fmt.Errorf("stream %s does not exist (declare it in the same Apply or before): %w", c.Stream, err))
		}
		if errors.Is(err, natsjs.ErrConsumerNotFound) {
			_, err = js.CreateConsumer(ctx, c.Stream, want)
			if errors.Is(err, natsjs.ErrConsumerExists) && attempt == 0 {
				continue // created meanwhile by someone else: compare and update
			}
			if err != nil {
				return ch, applyErr("consumer", ch.Name, "create", err)
			}
			ch.Action = Created
			return ch, nil
		}
		if err != nil {
			return ch, applyErr("consumer", ch.Name, "look up", err)
		}
		cur := cons.CachedInfo().Config
		ch.Fields = diffConsumer(cur, want)
		if len(ch.Fields) == 0 {
			ch.Action = Unchanged
			return ch, nil
		}
		upd := cur
		upd.Description = want.Description
		upd.DeliverPolicy = want.DeliverPolicy
		upd.AckPolicy = want.AckPolicy
		upd.FilterSubject = want.FilterSubject
		upd.FilterSubjects = want.FilterSubjects
		upd.AckWait = want.AckWait
		upd.MaxDeliver = want.MaxDeliver
		upd.BackOff = want.BackOff
		upd.MaxAckPending = want.MaxAckPending
		if _, err := js.UpdateConsumer(ctx, c.Stream, upd); err != nil {
			return ch, applyErr("consumer", ch.Name, "update "+fieldNames(ch.Fields), err)
		}
		ch.Action = Updated
		return ch, nil
	}
}

func diffConsumer(cur, want natsjs.ConsumerConfig) []FieldChange {
	var d differ
	d.add("description", quote(cur.Description), quote(want.Description))
	d.add("filter_subjects", listText(filters(cur)), listText(filters(want)))
	d.add("deliver_policy", deliverText(cur.DeliverPolicy), deliverText(want.DeliverPolicy))
	d.add("ack_policy", cur.AckPolicy.String(), want.AckPolicy.String())
	d.add("ack_wait", cur.AckWait.String(), want.AckWait.String())
	d.add("max_deliver", limitText(int64(cur.MaxDeliver)), limitText(int64(want.MaxDeliver)))
	d.add("backoff", durationsText(cur.BackOff), durationsText(want.BackOff))
	d.add("max_ack_pending", limitText(int64(cur.MaxAckPending)), limitText(int64(want.MaxAckPending)))
	return d
}

// filters is the consumer's filter list, whichever of the two fields holds it.
func filters(c natsjs.ConsumerConfig) []string {
	if len(c.FilterSubjects) > 0 {
		return c.FilterSubjects
	}
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return nil
}

func fieldNames(fs []FieldChange) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Field
	}
	return strings.Join(names, ", ")
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func listText(l []string) string { return "[" + strings.Join(l, " ") + "]" }

func durationsText(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return listText(s)
}

func limitText(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func deliverText(p natsjs.DeliverPolicy) string {
	if n, ok := deliverNames[p]; ok {
		return n
	}
	return p.String()
}
