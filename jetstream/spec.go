package jetstream

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

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

// LoadSpecs reads a spec file: YAML (.yaml, .yml) or JSON (read by the same
// decoder, JSON being a subset of YAML 1.2). Durations are Go durations or
// days: "90s", "15m", "720h", "30d", "1d12h"; 0 means the default. Times
// are RFC 3339 ("2024-01-15T00:00:00Z"). Unknown keys are errors (with the
// likely intended key), so a typo does not silently fall back to a default;
// every error names the line. Every spec is validated. Layout (every key but
// the names and subjects is optional):
//
//	streams:
//	  - name: AUTH_EVENTS
//	    description: Events of the auth service
//	    subjects: ["auth.>"]
//	    storage: file            # file | memory
//	    retention: limits        # limits | interest | workqueue
//	    replicas: 1
//	    max_age: 30d
//	    max_bytes: 0
//	    max_msg_size: 0
//	    max_msgs_per_subject: 0
//	    discard: old             # old | new
//	    discard_new_per_subject: false
//	    duplicates: 2m
//	    allow_msg_ttl: false
//	    allow_msg_schedules: false  # At/After/Cron/Every publishes (adds _schedule.<subject> subjects)
//	    allow_atomic: false         # PublishAtomic
//	    compression: none        # none | s2
//	    placement: {cluster: east, tags: [ssd]}
//	    sources:                 # or mirror: {name: ..., ...} (a mirror has no subjects)
//	      - {name: LEGACY_AUTH, filter_subject: "auth.user.>", start_time: "2024-01-01T00:00:00Z"}
//	consumers:
//	  - stream: AUTH_EVENTS
//	    durable: auth-user-processor
//	    filter_subjects: ["auth.user.>"]
//	    deliver_policy: all      # all | new | last | last_per_subject | by_start_sequence | by_start_time
//	    start_sequence: 0        # with by_start_sequence
//	    start_time: ""           # with by_start_time
//	    ack_wait: 30s
//	    max_deliver: 5
//	    backoff: []
//	    max_ack_pending: 1000
func LoadSpecs(path string) (Specs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Specs{}, newSpecError(err, "cannot read spec file: %v", err)
	}
	s, err := ParseSpecs(b)
	if err != nil {
		var se *specError
		if errors.As(err, &se) {
			return Specs{}, &specError{msg: path + ": " + se.msg, errs: se.errs}
		}
		return Specs{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSpecs is LoadSpecs on the content of a file.
func ParseSpecs(data []byte) (Specs, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Specs{}, newSpecError(nil, "not valid YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return Specs{}, newSpecError(nil, "empty spec file (declare streams: and consumers:)")
	}
	var doc specFile
	if err := decodeNode(root.Content[0], "", reflect.ValueOf(&doc).Elem()); err != nil {
		return Specs{}, err
	}
	if len(doc.Streams) == 0 && len(doc.Consumers) == 0 {
		return Specs{}, newSpecError(nil, "no streams or consumers declared")
	}
	var out Specs
	for _, d := range doc.Streams {
		out.Streams = append(out.Streams, d.spec())
	}
	for _, d := range doc.Consumers {
		out.Consumers = append(out.Consumers, d.spec())
	}
	if err := out.Validate(); err != nil {
		return Specs{}, err
	}
	return out, nil
}

// The file format is kept apart from StreamSpec/ConsumerSpec so that the Go
// types can use nats.go's enums while the file uses their names. Fields are
// read by decodeNode: `yaml` names the key, `enum` the set of names a text
// value must come from.
type specFile struct {
	Streams   []streamDoc   `yaml:"streams"`
	Consumers []consumerDoc `yaml:"consumers"`
}

type streamDoc struct {
	Name                 string        `yaml:"name"`
	Description          string        `yaml:"description"`
	Subjects             []string      `yaml:"subjects"`
	Storage              string        `yaml:"storage" enum:"storage"`
	Retention            string        `yaml:"retention" enum:"retention"`
	Replicas             int           `yaml:"replicas"`
	MaxAge               specDuration  `yaml:"max_age"`
	MaxBytes             int64         `yaml:"max_bytes"`
	MaxMsgSize           int32         `yaml:"max_msg_size"`
	MaxMsgsPerSubject    int64         `yaml:"max_msgs_per_subject"`
	Discard              string        `yaml:"discard" enum:"discard"`
	DiscardNewPerSubject bool          `yaml:"discard_new_per_subject"`
	Duplicates           specDuration  `yaml:"duplicates"`
	AllowMsgTTL          bool          `yaml:"allow_msg_ttl"`
	AllowMsgSchedules    bool          `yaml:"allow_msg_schedules"`
	AllowAtomicPublish   bool          `yaml:"allow_atomic"`
	Compression          string        `yaml:"compression" enum:"compression"`
	Mirror               *sourceDoc    `yaml:"mirror"`
	Sources              []sourceDoc   `yaml:"sources"`
	Placement            *placementDoc `yaml:"placement"`
}

type sourceDoc struct {
	Name          string    `yaml:"name"`
	FilterSubject string    `yaml:"filter_subject"`
	StartSequence uint64    `yaml:"start_sequence"`
	StartTime     time.Time `yaml:"start_time"`
	Domain        string    `yaml:"domain"`
}

type placementDoc struct {
	Cluster string   `yaml:"cluster"`
	Tags    []string `yaml:"tags"`
}

type consumerDoc struct {
	Stream         string         `yaml:"stream"`
	Durable        string         `yaml:"durable"`
	Description    string         `yaml:"description"`
	FilterSubjects []string       `yaml:"filter_subjects"`
	DeliverPolicy  string         `yaml:"deliver_policy" enum:"deliver policy"`
	StartSequence  uint64         `yaml:"start_sequence"`
	StartTime      time.Time      `yaml:"start_time"`
	AckWait        specDuration   `yaml:"ack_wait"`
	MaxDeliver     int            `yaml:"max_deliver"`
	BackOff        []specDuration `yaml:"backoff"`
	MaxAckPending  int            `yaml:"max_ack_pending"`
}

var (
	storageNames   = map[natsjs.StorageType]string{natsjs.FileStorage: "file", natsjs.MemoryStorage: "memory"}
	retentionNames = map[natsjs.RetentionPolicy]string{
		natsjs.LimitsPolicy: "limits", natsjs.InterestPolicy: "interest", natsjs.WorkQueuePolicy: "workqueue",
	}
	discardNames     = map[natsjs.DiscardPolicy]string{natsjs.DiscardOld: "old", natsjs.DiscardNew: "new"}
	compressionNames = map[natsjs.StoreCompression]string{natsjs.NoCompression: "none", natsjs.S2Compression: "s2"}
	deliverNames     = map[natsjs.DeliverPolicy]string{
		natsjs.DeliverAllPolicy: "all", natsjs.DeliverLastPolicy: "last",
		natsjs.DeliverNewPolicy: "new", natsjs.DeliverLastPerSubjectPolicy: "last_per_subject",
		natsjs.DeliverByStartSequencePolicy: "by_start_sequence", natsjs.DeliverByStartTimePolicy: "by_start_time",
	}
	// enumNames are the names an `enum`-tagged field accepts.
	enumNames = map[string][]string{
		"storage":        sortedNames(storageNames),
		"retention":      sortedNames(retentionNames),
		"discard":        sortedNames(discardNames),
		"compression":    sortedNames(compressionNames),
		"deliver policy": sortedNames(deliverNames),
	}
)

func sortedNames[K comparable](names map[K]string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func namesText[K comparable](names map[K]string) string {
	return strings.Join(sortedNames(names), ", ")
}

// lookupName returns the key whose name is s (any case); "" and unknown
// names (refused by decodeNode already) select the zero key, the default.
func lookupName[K comparable](names map[K]string, s string) K {
	for k, n := range names {
		if n == strings.ToLower(s) {
			return k
		}
	}
	var zero K
	return zero
}

func (d streamDoc) spec() StreamSpec {
	s := StreamSpec{
		Name: d.Name, Description: d.Description, Subjects: d.Subjects,
		Storage: lookupName(storageNames, d.Storage), Retention: lookupName(retentionNames, d.Retention),
		Replicas: d.Replicas, MaxAge: time.Duration(d.MaxAge), MaxBytes: d.MaxBytes, MaxMsgSize: d.MaxMsgSize,
		MaxMsgsPerSubject: d.MaxMsgsPerSubject, Discard: lookupName(discardNames, d.Discard),
		DiscardNewPerSubject: d.DiscardNewPerSubject, Duplicates: time.Duration(d.Duplicates),
		AllowMsgTTL: d.AllowMsgTTL, AllowMsgSchedules: d.AllowMsgSchedules, AllowAtomicPublish: d.AllowAtomicPublish,
		Compression: lookupName(compressionNames, d.Compression),
	}
	if d.Mirror != nil {
		m := d.Mirror.spec()
		s.Mirror = &m
	}
	for _, src := range d.Sources {
		s.Sources = append(s.Sources, src.spec())
	}
	if d.Placement != nil {
		s.Placement = &PlacementSpec{Cluster: d.Placement.Cluster, Tags: d.Placement.Tags}
	}
	return s
}

func (d sourceDoc) spec() StreamSourceSpec {
	return StreamSourceSpec{Name: d.Name, FilterSubject: d.FilterSubject, StartSequence: d.StartSequence, StartTime: d.StartTime, Domain: d.Domain}
}

func (d consumerDoc) spec() ConsumerSpec {
	c := ConsumerSpec{
		Stream: d.Stream, Durable: d.Durable, Description: d.Description,
		FilterSubjects: d.FilterSubjects, DeliverPolicy: lookupName(deliverNames, d.DeliverPolicy),
		StartSequence: d.StartSequence, StartTime: d.StartTime, AckWait: time.Duration(d.AckWait),
		MaxDeliver: d.MaxDeliver, MaxAckPending: d.MaxAckPending,
	}
	for _, b := range d.BackOff {
		c.BackOff = append(c.BackOff, time.Duration(b))
	}
	return c
}

// specDuration is a duration in a spec file: see ParseDuration.
type specDuration time.Duration

// ParseDuration reads a duration as spec files write them: a Go duration
// ("90s", "1h30m", "720h") in which days may be used too ("30d", "1d12h",
// "1.5d"; a day is 24 hours), or "0".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	var b strings.Builder
	num := -1 // start of the number being read, -1 outside one
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			if num < 0 {
				num = i
			}
			continue
		case c == 'd' && num >= 0:
			days, err := strconv.ParseFloat(s[num:i], 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64))
			b.WriteByte('h')
		default:
			if num >= 0 {
				b.WriteString(s[num:i])
			}
			b.WriteByte(c)
		}
		num = -1
	}
	if num >= 0 {
		b.WriteString(s[num:])
	}
	d, err := time.ParseDuration(b.String())
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

// Decoding: a spec file is read node by node rather than by yaml's struct
// decoder, so that every error names the line, the spec and the key in the
// file's terms (yaml's errors name Go types).

// decodeNode stores n into v, a value of one of the doc types above; path
// is where n is in the file ("streams[0] AUTH_EVENTS", "... max_age").
func decodeNode(n *yaml.Node, path string, v reflect.Value) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return nil // "key:" or "key: ~": the default
	}
	bad := func(want string) error {
		got := n.Value
		switch n.Kind {
		case yaml.MappingNode:
			got = "a mapping"
		case yaml.SequenceNode:
			got = "a list"
		default:
			got = strconv.Quote(got)
		}
		return newSpecError(nil, "line %d: %s: want %s, got %s", n.Line, path, want, got)
	}
	switch v.Type() {
	case reflect.TypeFor[specDuration]():
		if n.Kind != yaml.ScalarNode {
			return bad("a duration such as 90s, 15m, 720h or 30d")
		}
		d, err := ParseDuration(n.Value)
		if err != nil || d < 0 {
			return newSpecError(nil, "line %d: %s: %q is not a duration: write it like 90s, 15m, 720h or 30d", n.Line, path, n.Value)
		}
		v.SetInt(int64(d))
		return nil
	case reflect.TypeFor[time.Time]():
		if n.Kind != yaml.ScalarNode {
			return bad("a time such as 2024-01-15T00:00:00Z")
		}
		if n.Value == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, n.Value)
		if err != nil {
			return newSpecError(nil, "line %d: %s: %q is not a time: write it in RFC 3339, like 2024-01-15T00:00:00Z", n.Line, path, n.Value)
		}
		v.Set(reflect.ValueOf(t))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return bad("text")
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return bad("true or false")
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || err != nil {
			return bad("a whole number")
		}
		v.SetInt(i)
		return nil
	case reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			return bad("a whole number, 0 or more")
		}
		v.SetUint(u)
		return nil
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return decodeNode(n, path, v.Elem())
	case reflect.Slice:
		items := n.Content
		switch {
		case n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() != reflect.Struct:
			items = []*yaml.Node{n} // `subjects: auth.>` for `subjects: [auth.>]`
		case n.Kind != yaml.SequenceNode:
			return bad("a list")
		}
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			p := fmt.Sprintf("%s[%d]", path, i)
			if item.Kind == yaml.MappingNode {
				p = strings.TrimPrefix(p+labelOf(item), " ")
			}
			if err := decodeNode(item, p, out.Index(i)); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	case reflect.Struct:
		return decodeMapping(n, path, v)
	}
	return fmt.Errorf("jetstream: spec decoder cannot read into %s", v.Type()) // a bug of this file
}

// labelOf is " NAME" for a mapping with a name (or stream/durable) key, so
// that errors say which spec they are about.
func labelOf(n *yaml.Node) string {
	var name, stream, durable string
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "name":
			name = n.Content[i+1].Value
		case "stream":
			stream = n.Content[i+1].Value
		case "durable":
			durable = n.Content[i+1].Value
		}
	}
	switch {
	case name != "":
		return " " + name
	case durable != "":
		return " " + stream + "/" + durable
	}
	return ""
}

func decodeMapping(n *yaml.Node, path string, v reflect.Value) error {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of keys to values"
		if path == "" {
			what = "streams: and consumers: at the top"
		}
		got := "a list"
		if n.Kind == yaml.ScalarNode {
			got = strconv.Quote(n.Value)
		}
		return newSpecError(nil, "line %d: %s: want %s, got %s", n.Line, cmp.Or(path, "spec file"), what, got)
	}
	t := v.Type()
	keys := make([]string, 0, t.NumField())
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		k := t.Field(i).Tag.Get("yaml")
		keys = append(keys, k)
		fields[k] = i
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		where := strings.TrimPrefix(path+" "+key, " ")
		fi, ok := fields[key]
		if !ok {
			return newSpecError(nil, "line %d: %s: unknown key %q (%s)", kn.Line, cmp.Or(path, "spec file"), key, suggest(key, keys))
		}
		if seen[key] {
			return newSpecError(nil, "line %d: %s: key %q given twice", kn.Line, cmp.Or(path, "spec file"), key)
		}
		seen[key] = true
		if err := decodeNode(vn, where, v.Field(fi)); err != nil {
			return err
		}
		if enum := t.Field(fi).Tag.Get("enum"); enum != "" && vn.Tag != "!!null" {
			s := strings.ToLower(v.Field(fi).String())
			if !slices.Contains(enumNames[enum], s) {
				return newSpecError(nil, "line %d: %s: unknown %s %q (one of %s)", vn.Line, where, enum, vn.Value, strings.Join(enumNames[enum], ", "))
			}
		}
	}
	return nil
}

// suggest is "did you mean "subjects"?" for a key close to a valid one, else
// the list of valid keys.
func suggest(key string, valid []string) string {
	best, bestDist := "", 3 // further than 2 edits away is not a typo
	for _, k := range valid {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		for _, k := range valid {
			if strings.HasPrefix(k, key) || strings.HasPrefix(key, k) {
				best = k
				break
			}
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "valid keys: " + strings.Join(valid, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
