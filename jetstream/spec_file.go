package jetstream

// The spec file: LoadSpecs and ParseSpecs read scripts/streams.yaml (or its
// JSON form) into Specs, with errors that name the file's line, the key at
// fault and the closest valid key (a typo's fix).

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

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

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
