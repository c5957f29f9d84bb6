package jetstream

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// Spec is a stream or consumer declared as code: StreamSpec or ConsumerSpec
// (values or pointers). Apply creates or updates what they declare.
type Spec interface {
	// Validate reports a spec the server would refuse or that would not do
	// what it says, before anything is sent.
	Validate() error
	isSpec()
}

// StreamSpec declares a stream. The zero value of each optional field means
// the server's default, written next to the field. Apply makes the server
// match every field, zero ones included (a zero MaxMsgsPerSubject sets
// "unlimited" back).
type StreamSpec struct {
	// Name of the stream, required: no '.', '*', '>', whitespace, path
	// separator or non-printable character (e.g. "AUTH_EVENTS").
	Name string
	// Description is free text shown by `nats stream info`. Default empty.
	Description string
	// Subjects the stream stores: concrete subjects or wildcard patterns
	// ("auth.>", "billing.*.created"). Required unless the stream is a
	// Mirror (which must have none) or has Sources.
	Subjects []string
	// Storage: natsjs.FileStorage (default, survives restarts) or
	// natsjs.MemoryStorage. Immutable once the stream exists.
	Storage natsjs.StorageType
	// Retention: natsjs.LimitsPolicy (default: keep until MaxAge/MaxBytes),
	// natsjs.InterestPolicy or natsjs.WorkQueuePolicy.
	Retention natsjs.RetentionPolicy
	// Replicas is the number of copies in a cluster, 1 to 5. Default 1.
	Replicas int
	// MaxAge drops messages older than this. Default 0: no age limit.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; the oldest messages go first.
	// Default 0: unlimited.
	MaxBytes int64
	// MaxMsgSize refuses larger messages (the publisher reports envelope.ErrTooLarge).
	// Default 0: the server's max payload.
	MaxMsgSize int32
	// MaxMsgsPerSubject keeps at most this many messages per subject: 1
	// keeps the latest event of each subject (a "last value" stream).
	// Default 0: unlimited.
	MaxMsgsPerSubject int64
	// Discard is what a full stream does with a new message:
	// natsjs.DiscardOld (default) drops the oldest messages to make room;
	// natsjs.DiscardNew refuses the new one (the publisher gets an error).
	Discard natsjs.DiscardPolicy
	// DiscardNewPerSubject applies DiscardNew per subject once a subject
	// holds MaxMsgsPerSubject messages. Requires Discard natsjs.DiscardNew
	// and MaxMsgsPerSubject > 0. Default false.
	DiscardNewPerSubject bool
	// Duplicates is the de-duplication window: a message whose Nats-Msg-Id
	// (the event id) was seen within it is acked as a duplicate and not
	// stored again. Default 0: the server's 2 minutes, or MaxAge if shorter.
	// Must not exceed MaxAge when MaxAge is set.
	Duplicates time.Duration
	// AllowMsgTTL lets publishers give single messages a time to live (the
	// Nats-TTL header; needs nats-server 2.11 or later). Once on, the
	// server refuses to turn it off. Default false.
	AllowMsgTTL bool
	// AllowMsgSchedules lets publishers deliver events later or on a
	// recurring schedule (jetstream.At, After, Cron, Every; nats-server 2.12
	// or later, 2.14 for cron). Pending schedules wait in the stream on
	// "_schedule.<subject>.<event id>": with it on, Apply adds
	// transport.ScheduleSubjects(Subjects) ("_schedule.auth.>" for "auth.>")
	// to the stream's subjects, and the server turns on roll-ups (a new
	// schedule for the same event replaces the old one). Not for a Mirror
	// or a stream with Sources. Once on, the server refuses to turn it off.
	// Default false.
	AllowMsgSchedules bool
	// AllowAtomicPublish lets publishers store a batch of events all or
	// none (Publisher.PublishAtomic; nats-server 2.12 or later). Not for a
	// Mirror. Default false.
	AllowAtomicPublish bool
	// Compression of the stored messages: natsjs.NoCompression (default) or
	// natsjs.S2Compression (less disk for JSON payloads, some CPU).
	Compression natsjs.StoreCompression
	// Mirror makes the stream a read-only copy of another stream (for
	// example in another region or domain). A mirror has no Subjects and no
	// Sources. Once the stream exists the server refuses to make it a
	// mirror or to change what it mirrors; removing Mirror promotes it to
	// an ordinary stream. Default nil: not a mirror.
	Mirror *StreamSourceSpec
	// Sources are streams whose messages are copied into this one, next to
	// what it stores from its own Subjects. Default empty.
	Sources []StreamSourceSpec
	// Placement chooses where the stream's replicas live in a super-cluster
	// or a tagged cluster. Default nil: the cluster of the server that
	// handles the request, any servers.
	Placement *PlacementSpec
}

// StreamSourceSpec is a stream a Mirror copies or a Source feeds from.
type StreamSourceSpec struct {
	// Name of the stream copied from, required.
	Name string
	// FilterSubject copies only the messages on these subjects. Default
	// empty: all of them.
	FilterSubject string
	// StartSequence starts the copy at this sequence of the origin stream.
	// Default 0: from its first message. Excludes StartTime.
	StartSequence uint64
	// StartTime starts the copy at the first message stored at or after this
	// time. Default zero: from the first message. Excludes StartSequence.
	StartTime time.Time
	// Domain is the JetStream domain of the origin stream (a leaf node or
	// another deployment). Default empty: the same domain as this stream.
	Domain string
}

// PlacementSpec is where a stream's replicas are placed.
type PlacementSpec struct {
	// Cluster is the name of the cluster the replicas go to. Default empty:
	// the cluster of the server handling the request.
	Cluster string
	// Tags limit the replicas to servers carrying every one of these tags
	// (nats-server's server_tags, e.g. "az:us-east-1a", "ssd"). Default
	// empty: any server.
	Tags []string
}

// ConsumerSpec declares a durable pull consumer with explicit acks.
type ConsumerSpec struct {
	// Stream the consumer reads, required (a valid stream name).
	Stream string
	// Durable name, required (same rules as a stream name). Processes that
	// bind to the same durable share its messages.
	Durable string
	// Description is free text. Default empty.
	Description string
	// FilterSubjects selects the stream's subjects delivered. A '*' matches
	// exactly one token: "auth.user.*" delivers auth.user.created but not
	// auth.user.role.updated; "auth.user.>" delivers both. Default empty:
	// every subject of the stream.
	FilterSubjects []string
	// DeliverPolicy is where a new consumer starts: natsjs.DeliverAllPolicy
	// (default: the whole stream), DeliverNewPolicy (only events stored
	// after its creation), DeliverLastPolicy, DeliverLastPerSubjectPolicy,
	// DeliverByStartSequencePolicy (with StartSequence) or
	// DeliverByStartTimePolicy (with StartTime). Immutable once the
	// consumer exists: a projection that must not replay 30 days of events
	// is created with DeliverNewPolicy or a start time.
	DeliverPolicy natsjs.DeliverPolicy
	// StartSequence is the first stream sequence delivered. Setting it with
	// the default DeliverPolicy means DeliverByStartSequencePolicy. Default 0.
	StartSequence uint64
	// StartTime delivers from the first event stored at or after it. Setting
	// it with the default DeliverPolicy means DeliverByStartTimePolicy.
	// Default zero: unset.
	StartTime time.Time
	// AckWait is how long the server waits for an ack before redelivering.
	// Default 0: the server's 30s. When BackOff is set the server uses
	// BackOff[0] instead, so AckWait must then be 0 or equal to BackOff[0].
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one message. Default 0: unlimited.
	MaxDeliver int
	// BackOff is the server's redelivery schedule after ack timeouts (entry
	// i is the wait after delivery i+1; the last repeats). At most
	// MaxDeliver entries. Default empty: AckWait every time.
	BackOff []time.Duration
	// MaxAckPending bounds unacknowledged messages across all bound
	// processes. Default 0: the server's 1000.
	MaxAckPending int
}

func (StreamSpec) isSpec()   {}
func (ConsumerSpec) isSpec() {}

// Key is the stream's name, the identity Apply uses.
func (s StreamSpec) Key() string { return s.Name }

// Key is "STREAM/DURABLE", the identity Apply uses.
func (c ConsumerSpec) Key() string { return c.Stream + "/" + c.Durable }

// Validate checks the spec. Errors match ErrInvalidSpec, envelope.ErrInvalidConfig and,
// for the rules that have one, transport.ErrInvalidName or ErrDuplicatesWindow.
func (s StreamSpec) Validate() error {
	fail := func(err error) error { return specErr("stream", s.Name, err) }
	if err := validateName("name", s.Name); err != nil {
		return fail(err)
	}
	switch {
	case s.Mirror != nil && len(s.Subjects) > 0:
		return fail(errors.New("a mirror has no subjects of its own (it stores those of the stream it mirrors): remove subjects or mirror"))
	case s.Mirror != nil && len(s.Sources) > 0:
		return fail(errors.New("a mirror cannot have sources too: remove sources or mirror"))
	case s.Mirror == nil && len(s.Sources) == 0 && len(s.Subjects) == 0:
		return fail(errors.New("no subjects (a stream needs subjects, a mirror or sources)"))
	}
	if err := validatePatterns("subject", s.Subjects); err != nil {
		return fail(err)
	}
	if _, ok := storageNames[s.Storage]; !ok {
		return fail(fmt.Errorf("unknown storage %d", s.Storage))
	}
	if _, ok := retentionNames[s.Retention]; !ok {
		return fail(fmt.Errorf("unknown retention %d", s.Retention))
	}
	if _, ok := discardNames[s.Discard]; !ok {
		return fail(fmt.Errorf("unknown discard policy %d", s.Discard))
	}
	if _, ok := compressionNames[s.Compression]; !ok {
		return fail(fmt.Errorf("unknown compression %d", s.Compression))
	}
	switch {
	case s.Replicas < 0 || s.Replicas > 5:
		return fail(fmt.Errorf("replicas %d not in 1..5", s.Replicas))
	case s.MaxAge < 0:
		return fail(fmt.Errorf("negative max age %s", s.MaxAge))
	case s.MaxBytes < -1:
		return fail(fmt.Errorf("max bytes %d (0 or -1 mean unlimited)", s.MaxBytes))
	case s.MaxMsgSize < -1:
		return fail(fmt.Errorf("max msg size %d (0 or -1 mean unlimited)", s.MaxMsgSize))
	case s.MaxMsgsPerSubject < -1:
		return fail(fmt.Errorf("max msgs per subject %d (0 or -1 mean unlimited)", s.MaxMsgsPerSubject))
	case s.Duplicates < 0:
		return fail(fmt.Errorf("negative duplicates window %s", s.Duplicates))
	case s.MaxAge > 0 && s.Duplicates > s.MaxAge:
		return fail(ruleErr(ErrDuplicatesWindow, "duplicates window %s is longer than max age %s", s.Duplicates, s.MaxAge))
	case s.DiscardNewPerSubject && (s.Discard != natsjs.DiscardNew || s.MaxMsgsPerSubject <= 0):
		return fail(errors.New("discard_new_per_subject needs discard: new and max_msgs_per_subject > 0"))
	case s.AllowMsgSchedules && (s.Mirror != nil || len(s.Sources) > 0):
		return fail(errors.New("allow_msg_schedules is not for a mirror or a stream with sources (the server refuses it): schedule in the origin stream"))
	case s.AllowAtomicPublish && s.Mirror != nil:
		return fail(errors.New("allow_atomic is not for a mirror (it stores only what it copies)"))
	}
	if s.Mirror != nil {
		if err := s.Mirror.validate(s.Name, "mirror"); err != nil {
			return fail(err)
		}
	}
	seen := make(map[string]bool, len(s.Sources))
	for i, src := range s.Sources {
		if err := src.validate(s.Name, fmt.Sprintf("sources[%d]", i)); err != nil {
			return fail(err)
		}
		key := src.Domain + " " + src.Name + " " + src.FilterSubject
		if seen[key] {
			return fail(fmt.Errorf("sources[%d]: stream %s (filter %q) listed twice", i, src.Name, src.FilterSubject))
		}
		seen[key] = true
	}
	if p := s.Placement; p != nil {
		if p.Cluster == "" && len(p.Tags) == 0 {
			return fail(errors.New("placement without cluster or tags (leave placement out for the default)"))
		}
		for i, t := range p.Tags {
			if strings.TrimSpace(t) == "" {
				return fail(fmt.Errorf("placement tags[%d] is empty", i))
			}
		}
	}
	return nil
}

func (src StreamSourceSpec) validate(self, what string) error {
	if err := validateName(what+" name", src.Name); err != nil {
		return err
	}
	if src.Name == self && src.Domain == "" {
		return fmt.Errorf("%s: a stream cannot copy from itself", what)
	}
	if src.FilterSubject != "" {
		if err := validatePatterns(what+" filter subject", []string{src.FilterSubject}); err != nil {
			return err
		}
	}
	if src.StartSequence > 0 && !src.StartTime.IsZero() {
		return fmt.Errorf("%s: start_sequence and start_time exclude each other", what)
	}
	if strings.ContainsAny(src.Domain, " .*>") {
		return fmt.Errorf("%s: invalid domain %q", what, src.Domain)
	}
	return nil
}

// Validate checks the spec. Errors match ErrInvalidSpec, envelope.ErrInvalidConfig and,
// for the rules that have one, transport.ErrInvalidName or ErrBackOffTooLong.
func (c ConsumerSpec) Validate() error {
	fail := func(err error) error { return specErr("consumer", c.Key(), err) }
	if err := validateName("stream name", c.Stream); err != nil {
		return fail(err)
	}
	if err := validateName("durable name", c.Durable); err != nil {
		return fail(err)
	}
	if err := validatePatterns("filter subject", c.FilterSubjects); err != nil {
		return fail(err)
	}
	if _, ok := deliverNames[c.DeliverPolicy]; !ok {
		return fail(fmt.Errorf("unsupported deliver policy %d (%s)", c.DeliverPolicy, namesText(deliverNames)))
	}
	switch p := c.deliverPolicy(); {
	case c.StartSequence > 0 && !c.StartTime.IsZero():
		return fail(errors.New("start_sequence and start_time exclude each other"))
	case c.StartSequence > 0 && p != natsjs.DeliverByStartSequencePolicy:
		return fail(fmt.Errorf("start_sequence goes with deliver policy by_start_sequence, not %s", deliverText(p)))
	case !c.StartTime.IsZero() && p != natsjs.DeliverByStartTimePolicy:
		return fail(fmt.Errorf("start_time goes with deliver policy by_start_time, not %s", deliverText(p)))
	case p == natsjs.DeliverByStartSequencePolicy && c.StartSequence == 0:
		return fail(errors.New("deliver policy by_start_sequence needs start_sequence (1 or more)"))
	case p == natsjs.DeliverByStartTimePolicy && c.StartTime.IsZero():
		return fail(errors.New("deliver policy by_start_time needs start_time"))
	}
	switch {
	case c.AckWait < 0:
		return fail(fmt.Errorf("negative ack wait %s", c.AckWait))
	case c.MaxDeliver < -1:
		return fail(fmt.Errorf("max deliver %d (0 or -1 mean unlimited)", c.MaxDeliver))
	case c.MaxAckPending < -1:
		return fail(fmt.Errorf("max ack pending %d (0 means the server default, -1 unlimited)", c.MaxAckPending))
	case c.MaxDeliver > 0 && len(c.BackOff) > c.MaxDeliver:
		return fail(ruleErr(ErrBackOffTooLong, "%d backoff entries but max deliver %d (at most one entry per delivery)", len(c.BackOff), c.MaxDeliver))
	}
	for i, d := range c.BackOff {
		if d <= 0 {
			return fail(fmt.Errorf("backoff[%d] = %s is not positive", i, d))
		}
	}
	if len(c.BackOff) > 0 && c.AckWait != 0 && c.AckWait != c.BackOff[0] {
		return fail(fmt.Errorf("ack wait %s would be replaced by backoff[0] = %s on the server: leave ack wait empty or set it to backoff[0]", c.AckWait, c.BackOff[0]))
	}
	return nil
}

// deliverPolicy is the policy the spec stands for: a start sequence or time
// with the default policy selects the matching "by start" policy.
func (c ConsumerSpec) deliverPolicy() natsjs.DeliverPolicy {
	if c.DeliverPolicy == natsjs.DeliverAllPolicy {
		switch {
		case c.StartSequence > 0:
			return natsjs.DeliverByStartSequencePolicy
		case !c.StartTime.IsZero():
			return natsjs.DeliverByStartTimePolicy
		}
	}
	return c.DeliverPolicy
}

// specError is a spec that cannot be applied. Its text says once what is
// wrong (`invalid stream spec "AUTH_EVENTS": no subjects ...`); it matches
// ErrInvalidSpec, envelope.ErrInvalidConfig and the cause's sentinels.
type specError struct {
	msg  string
	errs []error
}

func (e *specError) Error() string   { return e.msg }
func (e *specError) Unwrap() []error { return e.errs }

// newSpecError is a specError with the text format/args, wrapping cause
// (nil for none).
func newSpecError(cause error, format string, args ...any) error {
	errs := []error{ErrInvalidSpec, envelope.ErrInvalidConfig}
	if cause != nil {
		errs = append(errs, cause)
	}
	return &specError{msg: fmt.Sprintf(format, args...), errs: errs}
}

func specErr(kind, name string, err error) error {
	return newSpecError(err, "invalid %s spec %q: %v", kind, name, err)
}

// ruleError is a broken rule that has a sentinel of its own: the text holds
// the specifics only; the sentinel is matched with errors.Is.
type ruleError struct {
	msg  string
	rule error
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.rule }

func ruleErr(rule error, format string, args ...any) error {
	return &ruleError{msg: fmt.Sprintf(format, args...), rule: rule}
}

// validateName applies the server's rules for stream and consumer names.
func validateName(what, name string) error {
	if name == "" {
		return ruleErr(transport.ErrInvalidName, "empty %s", what)
	}
	for _, r := range name {
		if !transport.NameRune(r) {
			return ruleErr(transport.ErrInvalidName, `%s %q contains %q (names may not contain '.', '*', '>', '/', '\' or whitespace)`, what, name, r)
		}
	}
	return nil
}

// validatePatterns checks subjects that may hold wildcards: non-empty tokens,
// '*' only as a whole token, '>' only as the whole last token, no whitespace,
// no repeats.
func validatePatterns(what string, subjects []string) error {
	seen := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		if seen[s] {
			return fmt.Errorf("%s %q listed twice", what, s)
		}
		seen[s] = true
		toks := strings.Split(s, ".")
		for i, t := range toks {
			bad := t == "" ||
				(strings.ContainsAny(t, "*>") && t != "*" && t != ">") ||
				(t == ">" && i != len(toks)-1) ||
				strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0
			if bad {
				return fmt.Errorf("invalid %s %q", what, s)
			}
		}
	}
	return nil
}

// AuthEventsStream is the seed's stream: AUTH_EVENTS on "auth.>", file
// storage, limits retention, 30 days, 2 minutes of de-duplication.
func AuthEventsStream() StreamSpec {
	return StreamSpec{
		Name:        "AUTH_EVENTS",
		Description: "Events of the auth service (auth.>)",
		Subjects:    []string{"auth.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		Replicas:    1,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
	}
}

// DeadLetterStream is the dead-letter stream: DLQ on "dlq.>", file storage,
// limits retention, kept 30 days so that an operator can inspect and replay.
func DeadLetterStream() StreamSpec {
	return StreamSpec{
		Name:        "DLQ",
		Description: "Dead letters: messages that exhausted their deliveries or failed permanently (dlq.>)",
		Subjects:    []string{"dlq.>"},
		Storage:     natsjs.FileStorage,
		Retention:   natsjs.LimitsPolicy,
		Replicas:    1,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
	}
}

// Specs is the content of a spec file: streams and consumers.
type Specs struct {
	Streams   []StreamSpec
	Consumers []ConsumerSpec
}

// All returns the specs in the order Apply needs: streams, then consumers.
func (s Specs) All() []Spec {
	out := make([]Spec, 0, len(s.Streams)+len(s.Consumers))
	for _, st := range s.Streams {
		out = append(out, st)
	}
	for _, c := range s.Consumers {
		out = append(out, c)
	}
	return out
}

// Validate validates every spec and refuses two specs with the same key.
func (s Specs) Validate() error {
	_, err := normalizeSpecs(s.All())
	return err
}

// normalizeSpecs turns pointers into values (refusing nil ones), validates
// every spec, refuses a key declared twice (the second would silently undo
// the first) and orders streams before consumers, which need their stream.
func normalizeSpecs(specs []Spec) ([]Spec, error) {
	var streams, consumers []Spec
	seen := make(map[string]bool, len(specs))
	for i, sp := range specs {
		var key string
		switch s := sp.(type) {
		case StreamSpec:
			key = "stream " + s.Key()
			streams = append(streams, s)
		case *StreamSpec:
			if s == nil {
				return nil, newSpecError(nil, "spec %d is nil", i)
			}
			key = "stream " + s.Key()
			sp = *s
			streams = append(streams, *s)
		case ConsumerSpec:
			key = "consumer " + s.Key()
			consumers = append(consumers, s)
		case *ConsumerSpec:
			if s == nil {
				return nil, newSpecError(nil, "spec %d is nil", i)
			}
			key = "consumer " + s.Key()
			sp = *s
			consumers = append(consumers, *s)
		default:
			return nil, newSpecError(nil, "spec %d is a %T, not a StreamSpec or ConsumerSpec", i, sp)
		}
		if err := sp.Validate(); err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, newSpecError(nil, "%s declared twice (the second would undo the first): keep one", key)
		}
		seen[key] = true
	}
	return append(streams, consumers...), nil
}
