package jetstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
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
// the server's default, written next to the field.
type StreamSpec struct {
	// Name of the stream, required: no '.', '*', '>', whitespace, path
	// separator or non-printable character (e.g. "AUTH_EVENTS").
	Name string
	// Description is free text shown by `nats stream info`. Default empty.
	Description string
	// Subjects the stream stores, required: concrete subjects or wildcard
	// patterns ("auth.>", "billing.*.created").
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
	// MaxMsgSize refuses larger messages (the publisher reports ErrTooLarge).
	// Default 0: the server's max payload.
	MaxMsgSize int32
	// Duplicates is the de-duplication window: a message whose Nats-Msg-Id
	// (the event id) was seen within it is acked as a duplicate and not
	// stored again. Default 0: the server's 2 minutes, or MaxAge if shorter.
	// Must not exceed MaxAge when MaxAge is set.
	Duplicates time.Duration
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
	// FilterSubjects selects the stream's subjects delivered ("auth.user.*").
	// Default empty: every subject of the stream.
	FilterSubjects []string
	// DeliverPolicy is where a new consumer starts: natsjs.DeliverAllPolicy
	// (default), DeliverLastPolicy, DeliverNewPolicy or
	// DeliverLastPerSubjectPolicy. Immutable once the consumer exists.
	DeliverPolicy natsjs.DeliverPolicy
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

// Validate checks the spec. Errors match ErrInvalidSpec, ErrInvalidConfig and,
// for the rules that have one, ErrInvalidName or ErrDuplicatesWindow.
func (s StreamSpec) Validate() error {
	if err := validateName("stream name", s.Name); err != nil {
		return specErr("stream", s.Name, err)
	}
	if len(s.Subjects) == 0 {
		return specErr("stream", s.Name, errors.New("no subjects"))
	}
	if err := validatePatterns("subject", s.Subjects); err != nil {
		return specErr("stream", s.Name, err)
	}
	if _, ok := storageNames[s.Storage]; !ok {
		return specErr("stream", s.Name, fmt.Errorf("unknown storage %d", s.Storage))
	}
	if _, ok := retentionNames[s.Retention]; !ok {
		return specErr("stream", s.Name, fmt.Errorf("unknown retention %d", s.Retention))
	}
	switch {
	case s.Replicas < 0 || s.Replicas > 5:
		return specErr("stream", s.Name, fmt.Errorf("replicas %d not in 1..5", s.Replicas))
	case s.MaxAge < 0:
		return specErr("stream", s.Name, fmt.Errorf("negative max age %s", s.MaxAge))
	case s.MaxBytes < -1:
		return specErr("stream", s.Name, fmt.Errorf("max bytes %d (0 or -1 mean unlimited)", s.MaxBytes))
	case s.MaxMsgSize < -1:
		return specErr("stream", s.Name, fmt.Errorf("max msg size %d (0 or -1 mean unlimited)", s.MaxMsgSize))
	case s.Duplicates < 0:
		return specErr("stream", s.Name, fmt.Errorf("negative duplicates window %s", s.Duplicates))
	case s.MaxAge > 0 && s.Duplicates > s.MaxAge:
		return specErr("stream", s.Name, fmt.Errorf("%w: duplicates %s, max age %s", ErrDuplicatesWindow, s.Duplicates, s.MaxAge))
	}
	return nil
}

// Validate checks the spec. Errors match ErrInvalidSpec, ErrInvalidConfig and,
// for the rules that have one, ErrInvalidName or ErrBackOffTooLong.
func (c ConsumerSpec) Validate() error {
	key := c.Key()
	if err := validateName("stream name", c.Stream); err != nil {
		return specErr("consumer", key, err)
	}
	if err := validateName("durable name", c.Durable); err != nil {
		return specErr("consumer", key, err)
	}
	if err := validatePatterns("filter subject", c.FilterSubjects); err != nil {
		return specErr("consumer", key, err)
	}
	if _, ok := deliverNames[c.DeliverPolicy]; !ok {
		return specErr("consumer", key, fmt.Errorf("unsupported deliver policy %d (all, last, new, last_per_subject)", c.DeliverPolicy))
	}
	switch {
	case c.AckWait < 0:
		return specErr("consumer", key, fmt.Errorf("negative ack wait %s", c.AckWait))
	case c.MaxDeliver < -1:
		return specErr("consumer", key, fmt.Errorf("max deliver %d (0 or -1 mean unlimited)", c.MaxDeliver))
	case c.MaxAckPending < -1:
		return specErr("consumer", key, fmt.Errorf("max ack pending %d (0 means the server default, -1 unlimited)", c.MaxAckPending))
	case c.MaxDeliver > 0 && len(c.BackOff) > c.MaxDeliver:
		return specErr("consumer", key, fmt.Errorf("%w: %d backoff entries, max deliver %d", ErrBackOffTooLong, len(c.BackOff), c.MaxDeliver))
	}
	for i, d := range c.BackOff {
		if d <= 0 {
			return specErr("consumer", key, fmt.Errorf("backoff[%d] = %s is not positive", i, d))
		}
	}
	if len(c.BackOff) > 0 && c.AckWait != 0 && c.AckWait != c.BackOff[0] {
		return specErr("consumer", key, fmt.Errorf("ack wait %s would be replaced by backoff[0] = %s on the server: leave ack wait empty or set it to backoff[0]", c.AckWait, c.BackOff[0]))
	}
	return nil
}

func specErr(kind, name string, err error) error {
	return fmt.Errorf("%w: %w: %s %q: %w", ErrInvalidConfig, ErrInvalidSpec, kind, name, err)
}

// validateName applies the server's rules for stream and consumer names.
func validateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, what)
	}
	for _, r := range name {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %s %q contains %q", ErrInvalidName, what, name, r)
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

// LoadSpecs reads a spec file: YAML (.yaml, .yml) or JSON (JSON is read by
// the same decoder, being a subset of YAML 1.2). Durations are Go duration
// strings ("30s", "720h"). Unknown keys are errors, so a typo does not
// silently fall back to a default. Every spec is validated. Layout:
//
//	streams:
//	  - name: AUTH_EVENTS
//	    subjects: ["auth.>"]
//	    storage: file            # file | memory
//	    retention: limits        # limits | interest | workqueue
//	    replicas: 1
//	    max_age: 720h
//	    max_bytes: 0
//	    max_msg_size: 0
//	    duplicates: 2m
//	consumers:
//	  - stream: AUTH_EVENTS
//	    durable: auth-user-processor
//	    filter_subjects: ["auth.user.*"]
//	    deliver_policy: all      # all | last | new | last_per_subject
//	    ack_wait: 30s
//	    max_deliver: 5
//	    backoff: []
//	    max_ack_pending: 1000
func LoadSpecs(path string) (Specs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Specs{}, fmt.Errorf("%w: %w: %w", ErrInvalidConfig, ErrInvalidSpec, err)
	}
	s, err := ParseSpecs(b)
	if err != nil {
		return Specs{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSpecs is LoadSpecs on the content of a file.
func ParseSpecs(data []byte) (Specs, error) {
	var doc specFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Specs{}, fmt.Errorf("%w: %w: empty spec file", ErrInvalidConfig, ErrInvalidSpec)
		}
		return Specs{}, fmt.Errorf("%w: %w: %w", ErrInvalidConfig, ErrInvalidSpec, err)
	}
	if len(doc.Streams) == 0 && len(doc.Consumers) == 0 {
		return Specs{}, fmt.Errorf("%w: %w: no streams or consumers", ErrInvalidConfig, ErrInvalidSpec)
	}
	var out Specs
	for i, d := range doc.Streams {
		s, err := d.spec()
		if err != nil {
			return Specs{}, fmt.Errorf("%w: %w: streams[%d]: %w", ErrInvalidConfig, ErrInvalidSpec, i, err)
		}
		out.Streams = append(out.Streams, s)
	}
	for i, d := range doc.Consumers {
		c, err := d.spec()
		if err != nil {
			return Specs{}, fmt.Errorf("%w: %w: consumers[%d]: %w", ErrInvalidConfig, ErrInvalidSpec, i, err)
		}
		out.Consumers = append(out.Consumers, c)
	}
	if err := out.Validate(); err != nil {
		return Specs{}, err
	}
	return out, nil
}

// The file format is kept apart from StreamSpec/ConsumerSpec so that the Go
// types can use nats.go's enums while the file uses their names.
type specFile struct {
	Streams   []streamDoc   `yaml:"streams"`
	Consumers []consumerDoc `yaml:"consumers"`
}

type streamDoc struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Subjects    []string      `yaml:"subjects"`
	Storage     string        `yaml:"storage"`
	Retention   string        `yaml:"retention"`
	Replicas    int           `yaml:"replicas"`
	MaxAge      time.Duration `yaml:"max_age"`
	MaxBytes    int64         `yaml:"max_bytes"`
	MaxMsgSize  int32         `yaml:"max_msg_size"`
	Duplicates  time.Duration `yaml:"duplicates"`
}

type consumerDoc struct {
	Stream         string          `yaml:"stream"`
	Durable        string          `yaml:"durable"`
	Description    string          `yaml:"description"`
	FilterSubjects []string        `yaml:"filter_subjects"`
	DeliverPolicy  string          `yaml:"deliver_policy"`
	AckWait        time.Duration   `yaml:"ack_wait"`
	MaxDeliver     int             `yaml:"max_deliver"`
	BackOff        []time.Duration `yaml:"backoff"`
	MaxAckPending  int             `yaml:"max_ack_pending"`
}

var (
	storageNames   = map[natsjs.StorageType]string{natsjs.FileStorage: "file", natsjs.MemoryStorage: "memory"}
	retentionNames = map[natsjs.RetentionPolicy]string{
		natsjs.LimitsPolicy: "limits", natsjs.InterestPolicy: "interest", natsjs.WorkQueuePolicy: "workqueue",
	}
	deliverNames = map[natsjs.DeliverPolicy]string{
		natsjs.DeliverAllPolicy: "all", natsjs.DeliverLastPolicy: "last",
		natsjs.DeliverNewPolicy: "new", natsjs.DeliverLastPerSubjectPolicy: "last_per_subject",
	}
)

// lookupName returns the key whose name is s; "" selects the zero key (the default).
func lookupName[K comparable](names map[K]string, what, s string) (K, error) {
	var zero K
	if s == "" {
		return zero, nil
	}
	for k, n := range names {
		if n == strings.ToLower(s) {
			return k, nil
		}
	}
	valid := make([]string, 0, len(names))
	for _, n := range names {
		valid = append(valid, n)
	}
	slices.Sort(valid)
	return zero, fmt.Errorf("unknown %s %q (one of %s)", what, s, strings.Join(valid, ", "))
}

func (d streamDoc) spec() (StreamSpec, error) {
	st, err := lookupName(storageNames, "storage", d.Storage)
	if err != nil {
		return StreamSpec{}, err
	}
	rt, err := lookupName(retentionNames, "retention", d.Retention)
	if err != nil {
		return StreamSpec{}, err
	}
	return StreamSpec{
		Name: d.Name, Description: d.Description, Subjects: d.Subjects,
		Storage: st, Retention: rt, Replicas: d.Replicas,
		MaxAge: d.MaxAge, MaxBytes: d.MaxBytes, MaxMsgSize: d.MaxMsgSize, Duplicates: d.Duplicates,
	}, nil
}

func (d consumerDoc) spec() (ConsumerSpec, error) {
	dp, err := lookupName(deliverNames, "deliver policy", d.DeliverPolicy)
	if err != nil {
		return ConsumerSpec{}, err
	}
	return ConsumerSpec{
		Stream: d.Stream, Durable: d.Durable, Description: d.Description,
		FilterSubjects: d.FilterSubjects, DeliverPolicy: dp, AckWait: d.AckWait,
		MaxDeliver: d.MaxDeliver, BackOff: d.BackOff, MaxAckPending: d.MaxAckPending,
	}, nil
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
				return nil, fmt.Errorf("%w: %w: spec %d is nil", ErrInvalidConfig, ErrInvalidSpec, i)
			}
			key = "stream " + s.Key()
			sp = *s
			streams = append(streams, *s)
		case ConsumerSpec:
			key = "consumer " + s.Key()
			consumers = append(consumers, s)
		case *ConsumerSpec:
			if s == nil {
				return nil, fmt.Errorf("%w: %w: spec %d is nil", ErrInvalidConfig, ErrInvalidSpec, i)
			}
			key = "consumer " + s.Key()
			sp = *s
			consumers = append(consumers, *s)
		default:
			return nil, fmt.Errorf("%w: %w: spec %d is %T, not a StreamSpec or ConsumerSpec", ErrInvalidConfig, ErrInvalidSpec, i, sp)
		}
		if err := sp.Validate(); err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: %w: %s declared twice", ErrInvalidConfig, ErrInvalidSpec, key)
		}
		seen[key] = true
	}
	return append(streams, consumers...), nil
}
