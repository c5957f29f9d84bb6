package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/logs"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
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
	// Differs (Ensure only): it exists with other settings, which were
	// kept; Fields lists them, From the existing value, To the spec's.
	Differs Action = "differs"
)

// FieldChange is one setting an update changed (or, for Differs, would
// change), with values as text: From the server's, To the spec's.
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
	// Fields lists the settings an update changed, or that differ (empty
	// unless Updated or Differs).
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
		if c.Action == Created || c.Action == Updated {
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
// every start-up of an operator's script. It is the operator's tool
// (`jetevents streams apply -f scripts/streams.yaml` calls it): a service
// that declares the streams it needs calls Ensure, which never changes an
// existing stream. All specs are validated before anything is sent; streams
// are applied before consumers. Only the settings a spec type has are
// compared and changed: a setting it does not have, made by other tools
// (e.g. max_msgs, deny_delete, metadata), is kept. Every creation and update
// is logged at warn on slog.Default() (ApplyWithLogger chooses the logger),
// with the fields it changed. On a server error Apply stops and returns what
// it did so far with an error matching ErrApply and the server's error,
// whose text says what failed and what to do: settings the server cannot
// change once created (storage, deliver policy, mirror) and subjects another
// stream already stores (the error also matches transport.ErrSubjectsOverlap and names
// that stream) surface here.
func Apply(ctx context.Context, js natsjs.JetStream, specs ...Spec) (Changes, error) {
	return provision(ctx, js, nil, false, specs)
}

// ApplyWithLogger is Apply logging its changes with logger (nil:
// slog.Default()).
func ApplyWithLogger(ctx context.Context, js natsjs.JetStream, logger watermill.LoggerAdapter, specs ...Spec) (Changes, error) {
	return provision(ctx, js, logger, false, specs)
}

// Ensure creates the streams and consumers of specs that do not exist yet
// and never changes one that does: the call for a service that declares, at
// start-up, what it publishes to and consumes from. Retention, limits and
// replicas are the operator's (`jetevents streams apply`, Apply), and a
// service with a stale or partial spec must not revert them. An existing
// stream or consumer whose settings differ from its spec is left as it is:
// the differences are logged at warn with logger (nil: slog.Default()),
// existing value and spec's, and reported as a Change with Action Differs.
// A creation is logged at warn too. Specs are validated as by Apply, and
// errors match the same sentinels (ErrInvalidSpec, ErrApply,
// transport.ErrSubjectsOverlap: a new stream whose subjects another stream stores).
func Ensure(ctx context.Context, js natsjs.JetStream, logger watermill.LoggerAdapter, specs ...Spec) (Changes, error) {
	return provision(ctx, js, logger, true, specs)
}

// provision is Apply (keep false) and Ensure (keep true).
func provision(ctx context.Context, js natsjs.JetStream, logger watermill.LoggerAdapter, keep bool, specs []Spec) (Changes, error) {
	op := "apply"
	if keep {
		op = "ensure"
	}
	if js == nil {
		return nil, fmt.Errorf("jetstream %s: %w: nil JetStream", op, envelope.ErrInvalidConfig)
	}
	if logger == nil {
		logger = logs.NewSlog(nil)
	}
	norm, err := normalizeSpecs(specs)
	if err != nil {
		return nil, err
	}
	changes := make(Changes, 0, len(norm))
	for _, sp := range norm {
		var ch Change
		switch s := sp.(type) {
		case StreamSpec:
			ch, err = applyStream(ctx, js, s, keep)
		case ConsumerSpec:
			ch, err = applyConsumer(ctx, js, s, keep)
		}
		if err != nil {
			return changes, explainNoJetStream(err)
		}
		logChange(logger, ch)
		changes = append(changes, ch)
	}
	return changes, nil
}

// logChange logs what provisioning did to the server, at warn: a stream or
// consumer created or changed is an event in a deployment's life, and one
// that differs from a service's spec is a disagreement someone must settle.
func logChange(logger watermill.LoggerAdapter, ch Change) {
	key := ch.Kind // "stream" or "consumer"
	fields := watermill.LogFields{key: ch.Name}
	switch ch.Action {
	case Created:
		warn(logger, fmt.Sprintf("JetStream %s created", ch.Kind), nil, fields)
	case Updated:
		warn(logger, fmt.Sprintf("JetStream %s updated to its spec", ch.Kind), nil, fields.Add(watermill.LogFields{"changes": fieldsText(ch.Fields, "%s: %s -> %s")}))
	case Differs:
		warn(logger, fmt.Sprintf("JetStream %s exists with settings other than this spec; kept as it is (the operator's: change it with jetevents streams apply, or update the spec)", ch.Kind),
			nil, fields.Add(watermill.LogFields{"differences": fieldsText(ch.Fields, "%s: existing %s, spec %s")}))
	}
}

// fieldsText is the fields as one comma-separated text, each formatted with
// format (field, from, to).
func fieldsText(fs []FieldChange, format string) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf(format, f.Field, f.From, f.To)
	}
	return strings.Join(parts, ", ")
}

// applyErr is a server refusal as one sentence: "cannot update stream X
// (storage): <the server's reason>; <what to do>". The API error's text is
// the server's description, not nats.go's code dump; errors.Is / errors.As
// still reach it.
func applyErr(kind, name, op, detail string, err error) error {
	reason := err.Error()
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		reason = apiErr.Description
		if immutable(apiErr.Description) {
			loss := "its messages go with it"
			if kind == "consumer" {
				loss = "it then starts again from its deliver policy"
			}
			reason += fmt.Sprintf("; this setting is fixed once the %s exists: put the spec back, or delete and recreate the %s (%s)", kind, kind, loss)
		}
	}
	return &applyError{msg: fmt.Sprintf("cannot %s %s %s%s: %s", op, kind, name, detail, reason), errs: []error{ErrApply, err}}
}

// immutable reports whether a server refusal is about a setting that cannot
// change after creation.
func immutable(desc string) bool {
	desc = strings.ToLower(desc)
	for _, s := range []string{"can not change", "cannot change", "can not be updated", "not updatable", "can not be disabled", "can not unseal", "can not cancel"} {
		if strings.Contains(desc, s) {
			return true
		}
	}
	return false
}

// applyError carries its own text and matches ErrApply and the server's
// error (and transport.ErrSubjectsOverlap when it is about subjects).
type applyError struct {
	msg  string
	errs []error
}

func (e *applyError) Error() string   { return e.msg }
func (e *applyError) Unwrap() []error { return e.errs }

// jsErrCodeSubjectsOverlap is the server's JSStreamSubjectOverlapErr, which
// nats.go has no sentinel for.
const jsErrCodeSubjectsOverlap natsjs.ErrorCode = 10065

// overlapErr turns "subjects overlap with an existing stream" into an error
// naming the stream(s) that hold them, which the server does not say.
func overlapErr(ctx context.Context, js natsjs.JetStream, op string, want natsjs.StreamConfig, err error) error {
	var others []string
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		if si.Config.Name == want.Name {
			continue
		}
		for _, a := range want.Subjects {
			for _, b := range si.Config.Subjects {
				if SubjectsOverlap(a, b) {
					others = append(others, fmt.Sprintf("%s (%s overlaps %s)", si.Config.Name, a, b))
				}
			}
		}
	}
	slices.Sort(others)
	holder := "another stream"
	if len(others) > 0 {
		holder = "stream " + strings.Join(slices.Compact(others), ", stream ")
	}
	return &applyError{
		msg:  fmt.Sprintf("cannot %s stream %s: its subjects overlap with %s, and a message can be stored by one stream only: narrow the subjects of one of them, or make one source the other", op, want.Name, holder),
		errs: []error{ErrApply, transport.ErrSubjectsOverlap, err},
	}
}

func isOverlap(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeSubjectsOverlap
}

// SubjectsOverlap reports whether some subject matches both patterns a and
// b, where '*' matches one token and '>' one or more trailing tokens:
// "auth.>" overlaps "auth.user.*" but not "billing.>"; "auth.user.*" does
// not overlap "auth.user.role.updated".
func SubjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(at) && i == len(bt):
			return true
		case i == len(at) || i == len(bt):
			return false
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] != "*" && bt[i] != "*" && at[i] != bt[i]:
			return false
		}
	}
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

		MaxMsgsPerSubject:    s.MaxMsgsPerSubject,
		Discard:              s.Discard,
		DiscardNewPerSubject: s.DiscardNewPerSubject,
		AllowMsgTTL:          s.AllowMsgTTL,
		AllowMsgSchedules:    s.AllowMsgSchedules,
		AllowAtomicPublish:   s.AllowAtomicPublish,
		Compression:          s.Compression,
	}
	if s.AllowMsgSchedules {
		c.Subjects = append(c.Subjects, transport.ScheduleSubjects(s.Subjects)...)
	}
	if s.Mirror != nil {
		c.Mirror = s.Mirror.config()
	}
	for _, src := range s.Sources {
		c.Sources = append(c.Sources, src.config())
	}
	if p := s.Placement; p != nil {
		c.Placement = &natsjs.Placement{Cluster: p.Cluster, Tags: slices.Clone(p.Tags)}
	}
	if c.MaxMsgsPerSubject == 0 {
		c.MaxMsgsPerSubject = -1
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = -1
	}
	if c.Duplicates == 0 && c.Mirror == nil && len(c.Sources) == 0 {
		// The server's rule: 2 minutes, or the max age when shorter; none
		// for mirrors and sourcing streams.
		c.Duplicates = serverDefaultDuplicates
		if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	return c
}

// config is the nats.go form of the source; a domain becomes the external
// API prefix the server reports back ($JS.<domain>.API), so that specs and
// server configurations compare like for like.
func (src StreamSourceSpec) config() *natsjs.StreamSource {
	ss := &natsjs.StreamSource{Name: src.Name, FilterSubject: src.FilterSubject, OptStartSeq: src.StartSequence}
	if !src.StartTime.IsZero() {
		t := src.StartTime
		ss.OptStartTime = &t
	}
	if src.Domain != "" {
		ss.External = &natsjs.ExternalStream{APIPrefix: "$JS." + src.Domain + ".API"}
	}
	return ss
}

// applyStream creates the stream of s when missing; when it differs, it
// updates it, or with keep only reports the differences.
func applyStream(ctx context.Context, js natsjs.JetStream, s StreamSpec, keep bool) (Change, error) {
	ch := Change{Kind: "stream", Name: s.Name}
	want := s.config()
	for attempt := 0; ; attempt++ {
		st, err := js.Stream(ctx, s.Name)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, want)
			if errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue // created meanwhile by someone else: compare and update
			}
			if isOverlap(err) {
				return ch, overlapErr(ctx, js, "create", want, err)
			}
			if err != nil {
				return ch, applyErr("stream", s.Name, "create", "", err)
			}
			ch.Action = Created
			return ch, nil
		}
		if err != nil {
			return ch, applyErr("stream", s.Name, "look up", "", err)
		}
		cur := st.CachedInfo().Config
		ch.Fields = diffStream(cur, want)
		if len(ch.Fields) == 0 {
			ch.Action = Unchanged
			return ch, nil
		}
		if keep {
			ch.Action = Differs
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
		upd.MaxMsgsPerSubject = want.MaxMsgsPerSubject
		upd.Discard = want.Discard
		upd.DiscardNewPerSubject = want.DiscardNewPerSubject
		upd.AllowMsgTTL = want.AllowMsgTTL
		upd.AllowMsgSchedules = want.AllowMsgSchedules
		upd.AllowAtomicPublish = want.AllowAtomicPublish
		upd.Compression = want.Compression
		upd.Mirror = want.Mirror
		upd.Sources = want.Sources
		upd.Placement = want.Placement
		if _, err := js.UpdateStream(ctx, upd); err != nil {
			if isOverlap(err) {
				return ch, overlapErr(ctx, js, "update", want, err)
			}
			return ch, applyErr("stream", s.Name, "update", " ("+fieldNames(ch.Fields)+")", err)
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
	d.add("max_msgs_per_subject", limitText(cur.MaxMsgsPerSubject), limitText(want.MaxMsgsPerSubject))
	d.add("discard", discardNames[cur.Discard], discardNames[want.Discard])
	d.add("discard_new_per_subject", fmt.Sprint(cur.DiscardNewPerSubject), fmt.Sprint(want.DiscardNewPerSubject))
	d.add("allow_msg_ttl", fmt.Sprint(cur.AllowMsgTTL), fmt.Sprint(want.AllowMsgTTL))
	d.add("allow_msg_schedules", fmt.Sprint(cur.AllowMsgSchedules), fmt.Sprint(want.AllowMsgSchedules))
	d.add("allow_atomic", fmt.Sprint(cur.AllowAtomicPublish), fmt.Sprint(want.AllowAtomicPublish))
	d.add("compression", compressionNames[cur.Compression], compressionNames[want.Compression])
	d.add("mirror", sourceText(cur.Mirror), sourceText(want.Mirror))
	d.add("sources", sourcesText(cur.Sources), sourcesText(want.Sources))
	d.add("placement", placementText(cur.Placement), placementText(want.Placement))
	return d
}

// sourceText is a source as the diff shows it: "NAME", plus its filter,
// start and domain when set; "none" for nil.
func sourceText(s *natsjs.StreamSource) string {
	if s == nil {
		return "none"
	}
	var b strings.Builder
	b.WriteString(s.Name)
	if s.FilterSubject != "" {
		fmt.Fprintf(&b, " filter=%s", s.FilterSubject)
	}
	if s.OptStartSeq > 0 {
		fmt.Fprintf(&b, " start_sequence=%d", s.OptStartSeq)
	}
	if s.OptStartTime != nil {
		fmt.Fprintf(&b, " start_time=%s", s.OptStartTime.UTC().Format(time.RFC3339Nano))
	}
	if s.External != nil && s.External.APIPrefix != "" {
		fmt.Fprintf(&b, " api=%s", s.External.APIPrefix)
	}
	return b.String()
}

func sourcesText(ss []*natsjs.StreamSource) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "(" + sourceText(s) + ")"
	}
	slices.Sort(out) // the server keeps sources in no particular order
	return listText(out)
}

func placementText(p *natsjs.Placement) string {
	if p == nil || (p.Cluster == "" && len(p.Tags) == 0) {
		return "default"
	}
	tags := slices.Clone(p.Tags)
	slices.Sort(tags)
	return fmt.Sprintf("cluster=%q tags=%s", p.Cluster, listText(tags))
}

// config is the consumer configuration the spec stands for, defaults written out.
func (c ConsumerSpec) config() natsjs.ConsumerConfig {
	cfg := natsjs.ConsumerConfig{
		Durable:       c.Durable,
		Description:   c.Description,
		DeliverPolicy: c.deliverPolicy(),
		OptStartSeq:   c.StartSequence,
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
	if !c.StartTime.IsZero() {
		t := c.StartTime
		cfg.OptStartTime = &t
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

// applyConsumer creates the consumer of c when missing; when it differs, it
// updates it, or with keep only reports the differences.
func applyConsumer(ctx context.Context, js natsjs.JetStream, c ConsumerSpec, keep bool) (Change, error) {
	ch := Change{Kind: "consumer", Name: c.Key()}
	want := c.config()
	for attempt := 0; ; attempt++ {
		cons, err := js.Consumer(ctx, c.Stream, c.Durable)
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			return ch, &applyError{
				msg:  fmt.Sprintf("cannot create consumer %s: stream %s does not exist: declare the stream in the same file (or Apply) or create it first", ch.Name, c.Stream),
				errs: []error{ErrApply, err},
			}
		}
		if errors.Is(err, natsjs.ErrConsumerNotFound) {
			_, err = js.CreateConsumer(ctx, c.Stream, want)
			if errors.Is(err, natsjs.ErrConsumerExists) && attempt == 0 {
				continue // created meanwhile by someone else: compare and update
			}
			if err != nil {
				return ch, applyErr("consumer", ch.Name, "create", "", err)
			}
			ch.Action = Created
			return ch, nil
		}
		if err != nil {
			return ch, applyErr("consumer", ch.Name, "look up", "", err)
		}
		cur := cons.CachedInfo().Config
		ch.Fields = diffConsumer(cur, want)
		if len(ch.Fields) == 0 {
			ch.Action = Unchanged
			return ch, nil
		}
		if keep {
			ch.Action = Differs
			return ch, nil
		}
		upd := cur
		upd.Description = want.Description
		upd.DeliverPolicy = want.DeliverPolicy
		upd.OptStartSeq = want.OptStartSeq
		upd.OptStartTime = want.OptStartTime
		upd.AckPolicy = want.AckPolicy
		upd.FilterSubject = want.FilterSubject
		upd.FilterSubjects = want.FilterSubjects
		upd.AckWait = want.AckWait
		upd.MaxDeliver = want.MaxDeliver
		upd.BackOff = want.BackOff
		upd.MaxAckPending = want.MaxAckPending
		if _, err := js.UpdateConsumer(ctx, c.Stream, upd); err != nil {
			return ch, applyErr("consumer", ch.Name, "update", " ("+fieldNames(ch.Fields)+")", err)
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
	d.add("start_sequence", fmt.Sprint(cur.OptStartSeq), fmt.Sprint(want.OptStartSeq))
	d.add("start_time", timeText(cur.OptStartTime), timeText(want.OptStartTime))
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

func timeText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func deliverText(p natsjs.DeliverPolicy) string {
	if n, ok := deliverNames[p]; ok {
		return n
	}
	return p.String()
}
