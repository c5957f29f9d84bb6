package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Bus defaults. Each is documented on the field it fills.
const (
	// defaultMaxPayload is NATS' default max_payload (1 MiB).
	defaultMaxPayload = 1 << 20
	// defaultDuplicates is JetStream's default duplicates window.
	defaultDuplicates = 2 * time.Minute
)

// Config configures a Bus. Zero fields take the documented defaults.
type Config struct {
	// Streams are created by NewBus, in order. Default none (AddStream).
	Streams []StreamConfig
	// MaxPayload is the largest message (headers and data, counted as NATS
	// counts them) the bus stores. Default defaultMaxPayload (1 MiB).
	MaxPayload int
	// DeadLetterStream, when set, is the only stream a dead letter may land
	// in (as jetstream.TransportConfig.DeadLetterStream). Default "".
	DeadLetterStream string
	// Clock stamps stored messages and drives nak delays and AckWait. Default
	// envelope.SystemClock (real timers, owned by the bus). Any other clock is
	// manual: the bus sets no timer and re-reads it on Tick only.
	Clock envelope.Clock
	// MemberTTL is how long a member of a partitioned group stays listed
	// after its last beat (on Clock), as jetstream.TransportConfig.MemberTTL.
	// Default 5s.
	MemberTTL time.Duration
	// Logger receives durable changes and ends (info and error). Default
	// watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.MaxPayload == 0 {
		c.MaxPayload = defaultMaxPayload
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
	if c.MemberTTL == 0 {
		c.MemberTTL = defaultMemberTTL
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c Config) Validate() error {
	if c.MaxPayload < 0 {
		return fmt.Errorf("%w: MaxPayload %d is negative", envelope.ErrInvalidConfig, c.MaxPayload)
	}
	if c.MemberTTL < 0 {
		return fmt.Errorf("%w: MemberTTL %s is negative", envelope.ErrInvalidConfig, c.MemberTTL)
	}
	if c.DeadLetterStream != "" {
		if err := validName("DeadLetterStream", c.DeadLetterStream); err != nil {
			return err
		}
	}
	for _, s := range c.Streams {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// StreamConfig is a stream of the bus.
type StreamConfig struct {
	// Name names the stream (JetStream's rules: no '.', '*', '>',
	// whitespace or path separator). Required.
	Name string
	// Subjects the stream stores (wildcards allowed). Required; they may not
	// overlap another stream's.
	Subjects []string
	// Duplicates is the de-duplication window: a publish whose Nats-Msg-Id
	// the stream stored less than Duplicates ago is acknowledged as a
	// duplicate and not stored again. Default defaultDuplicates (2m).
	Duplicates time.Duration
	// AllowMsgTTL, AllowMsgSchedules and AllowAtomicPublish are
	// jetstream.StreamSpec's: per-message TTL (Nats-TTL), message schedules
	// (At, After, Cron, Every; AddStream then adds
	// transport.ScheduleSubjects(Subjects) to Subjects, as Apply does on
	// JetStream) and atomic batches (Publisher.PublishAtomic). Off, a
	// publish that needs one is refused with transport.ErrTTLDisabled,
	// transport.ErrSchedulesDisabled or transport.ErrAtomicDisabled, as on JetStream. Default
	// false.
	AllowMsgTTL        bool
	AllowMsgSchedules  bool
	AllowAtomicPublish bool
}

// Validate reports an unusable stream; errors match envelope.ErrInvalidConfig.
func (s StreamConfig) Validate() error {
	if err := validName("stream", s.Name); err != nil {
		return err
	}
	if len(s.Subjects) == 0 {
		return fmt.Errorf("%w: stream %s has no subject", envelope.ErrInvalidConfig, s.Name)
	}
	for _, subj := range s.Subjects {
		if err := validSubject(subj, true); err != nil {
			return fmt.Errorf("%w: stream %s: %w", envelope.ErrInvalidConfig, s.Name, err)
		}
	}
	if s.Duplicates < 0 {
		return fmt.Errorf("%w: stream %s: negative Duplicates %s", envelope.ErrInvalidConfig, s.Name, s.Duplicates)
	}
	return nil
}

// Message is a stored message, as Messages returns it (a copy).
type Message struct {
	Stream    string
	Sequence  uint64
	Subject   string
	Header    nats.Header
	Data      []byte
	Published time.Time
}

// PubAck is the bus's confirmation of a stored message.
type PubAck struct {
	// Stream that stored the message and its Sequence there (of the first
	// copy for a duplicate).
	Stream   string
	Sequence uint64
	// Duplicate: a message with the same Nats-Msg-Id was stored within the
	// stream's duplicates window; nothing was stored again.
	Duplicate bool
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Config StreamConfig
	// Msgs is the number of stored messages; LastSeq the last sequence.
	Msgs    uint64
	LastSeq uint64
	// Consumers names its durables.
	Consumers []string
}

// Bus is an in-memory broker with JetStream's semantics (see the package
// doc). It implements transport.Transport. Safe for concurrent use; all of
// its state sits behind one mutex, so every observation is consistent.
type Bus struct {
	cfg    Config
	manual bool

	mu      sync.Mutex
	streams map[string]*stream
	order   []*stream // creation order, for publishes and Messages
	closed  bool
	// armed is when the timer goroutine wakes next (zero: not armed).
	armed time.Time
	// schedules are the pending message schedules of every stream, by
	// fire time; expiries the messages with a TTL, by expiry.
	schedules schedHeap
	expiries  expiryHeap
	// members are the membership sets of partitioned groups
	// (membership.go).
	members map[string]map[string]member

	wake chan struct{} // re-arm the timer goroutine (cap 1)
	stop chan struct{}
	wg   sync.WaitGroup // the timer goroutine and every consumer's loop
}

var _ transport.Transport = (*Bus)(nil)

// NewBus returns a Bus with cfg's streams. With the system clock it starts
// the bus's timer goroutine; Close stops it. Errors match envelope.ErrInvalidConfig
// (and transport.ErrSubjectsOverlap).
func NewBus(cfg Config) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_, system := cfg.Clock.(envelope.SystemClock)
	if p, ok := cfg.Clock.(*envelope.SystemClock); ok && p != nil {
		system = true
	}
	b := &Bus{
		cfg:     cfg,
		manual:  !system,
		streams: make(map[string]*stream),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	for _, sc := range cfg.Streams {
		if err := b.AddStream(sc); err != nil {
			return nil, err
		}
	}
	if !b.manual {
		b.wg.Add(1)
		go b.timers()
	}
	return b, nil
}

// MaxPayload is Config.MaxPayload.
func (b *Bus) MaxPayload() int { return b.cfg.MaxPayload }

func (b *Bus) now() time.Time { return b.cfg.Clock.Now() }

// AddStream creates the stream, or updates the subjects and window of the
// stream of that name (its messages and durables stay). Errors match
// envelope.ErrInvalidConfig, transport.ErrSubjectsOverlap or transport.ErrClosed.
func (b *Bus) AddStream(sc StreamConfig) error {
	if err := sc.Validate(); err != nil {
		return err
	}
	if sc.Duplicates == 0 {
		sc.Duplicates = defaultDuplicates
	}
	sc.Subjects = slices.Clone(sc.Subjects)
	if sc.AllowMsgSchedules {
		sc.Subjects = append(sc.Subjects, transport.ScheduleSubjects(sc.Subjects)...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("add stream %s: %w", sc.Name, transport.ErrClosed)
	}
	for _, other := range b.order {
		if other.cfg.Name == sc.Name {
			continue
		}
		for _, a := range sc.Subjects {
			for _, o := range other.cfg.Subjects {
				if overlap(a, o) {
					return fmt.Errorf("%w: stream %s subject %q overlaps stream %s subject %q", transport.ErrSubjectsOverlap, sc.Name, a, other.cfg.Name, o)
				}
			}
		}
	}
	if s := b.streams[sc.Name]; s != nil {
		s.cfg = sc
		return nil
	}
	s := &stream{b: b, cfg: sc, dedup: make(map[string]dedupEntry), consumers: make(map[string]*durable), schedules: make(map[string]*schedEntry), bySubject: make(map[string][]*storedMsg)}
	b.streams[sc.Name] = s
	b.order = append(b.order, s)
	return nil
}

// DeleteStream deletes a stream with its messages and durables. Every
// consumer bound to one of them ends with an error matching
// transport.ErrConsumerEnded and transport.ErrNoStream, as a JetStream consumer whose
// stream is gone. Errors match transport.ErrNoStream.
func (b *Bus) DeleteStream(name string) error {
	b.mu.Lock()
	s := b.streams[name]
	if s == nil {
		b.mu.Unlock()
		return fmt.Errorf("delete stream %s: %w", name, transport.ErrNoStream)
	}
	delete(b.streams, name)
	b.order = slices.DeleteFunc(b.order, func(o *stream) bool { return o == s })
	s.deleted = true
	for _, e := range s.schedules {
		b.removeScheduleLocked(e)
	}
	var ended []*consumer
	for _, d := range s.consumers {
		d.deleted = true
		for _, c := range slices.Clone(d.pullers) {
			c.endLocked(fmt.Errorf("%w: %w: %w: stream %s no longer exists (durable %s)",
				transport.ErrConsumerEnded, transport.ErrSubscribe, transport.ErrNoStream, name, d.name))
			ended = append(ended, c)
		}
	}
	b.mu.Unlock()
	notifyEnded(ended)
	return nil
}

// Stream describes the stream. Errors match transport.ErrNoStream.
func (b *Bus) Stream(name string) (StreamInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.streams[name]
	if s == nil {
		return StreamInfo{}, fmt.Errorf("stream %s: %w", name, transport.ErrNoStream)
	}
	info := StreamInfo{Config: s.cfg, Msgs: uint64(len(s.msgs) - s.removed), LastSeq: uint64(len(s.msgs))}
	info.Config.Subjects = slices.Clone(s.cfg.Subjects)
	for n := range s.consumers {
		info.Consumers = append(info.Consumers, n)
	}
	slices.Sort(info.Consumers)
	return info, nil
}

// Messages returns a copy of every stored message whose subject matches
// filter (wildcards allowed: "dlq.>"), stream by stream in creation order,
// each in sequence order.
func (b *Bus) Messages(filter string) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Message
	for _, s := range b.order {
		for _, m := range s.msgs {
			if !m.deleted && overlap(filter, m.subject) {
				out = append(out, Message{
					Stream: s.cfg.Name, Sequence: m.seq, Subject: m.subject,
					Header: cloneHeader(m.header), Data: bytes.Clone(m.data), Published: m.time,
				})
			}
		}
	}
	return out
}

// Publish stores a message on subject (no wildcards) in the stream that
// listens on it, de-duplicated by its Nats-Msg-Id header within the
// stream's window, and hands it to the durables whose filter takes it.
// header and data are copied. Errors match transport.ErrPublish and transport.ErrNoStream,
// envelope.ErrTooLarge or transport.ErrClosed; envelope.ErrInvalidSubject for a bad subject (nothing
// stored).
func (b *Bus) Publish(ctx context.Context, subject string, header nats.Header, data []byte) (PubAck, error) {
	if err := validSubject(subject, false); err != nil {
		return PubAck{}, fmt.Errorf("publish: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return PubAck{}, publishErr(subject, "", err)
	}
	var id string
	if len(header[nats.MsgIdHdr]) > 0 {
		id = header[nats.MsgIdHdr][0]
	}
	return b.publish(subject, header, data, id, "")
}

// PublishDeadLetter stores msg (Nats-Msg-Id msg.ID) in the stream that
// listens on its subject: see transport.Transport. Errors match
// transport.ErrDeadLetter, and transport.ErrNoStream when no stream listens.
func (b *Bus) PublishDeadLetter(ctx context.Context, msg *transport.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", transport.ErrDeadLetter, msg.Subject, err)
	}
	if err := validSubject(msg.Subject, false); err != nil {
		return fmt.Errorf("%w: %w", transport.ErrDeadLetter, err)
	}
	h := nats.Header(cloneHeader(msg.Header))
	if h == nil {
		h = nats.Header{}
	}
	if msg.ID != "" {
		h.Set(nats.MsgIdHdr, msg.ID)
	}
	if _, err := b.publish(msg.Subject, h, msg.Data, msg.ID, b.cfg.DeadLetterStream); err != nil {
		return fmt.Errorf("%w: %w", transport.ErrDeadLetter, err)
	}
	return nil
}

// publishErr is a failed publish on subject: a transport.Error of kind
// transport.ErrPublish and kinds, with hint and cause.
func publishErr(subject, hint string, cause error, kinds ...error) error {
	return &transport.Error{Op: "publish", Subject: subject, Kinds: append([]error{transport.ErrPublish}, kinds...), Hint: hint, Err: cause}
}

// publish stores a validated message; expect, when set, is the stream it
// must land in.
func (b *Bus) publish(subject string, header nats.Header, data []byte, id, expect string) (PubAck, error) {
	if n := marshaler.WireSize(header, data); b.cfg.MaxPayload > 0 && n > b.cfg.MaxPayload {
		e := publishErr(subject, fmt.Sprintf("%d bytes with headers, max payload %d", n, b.cfg.MaxPayload), nil, envelope.ErrTooLarge)
		return PubAck{}, e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return PubAck{}, publishErr(subject, "", nil, transport.ErrClosed)
	}
	s := b.streamForLocked(subject)
	if s == nil {
		if ts := b.streamForLocked(header.Get(transport.HeaderScheduleTarget)); ts != nil {
			// A schedule whose target's stream does not store schedules.
			return PubAck{}, publishErr(subject, "", ts.settingErr(transport.ErrSchedulesDisabled, "AllowMsgSchedules", "allow_msg_schedules"))
		}
		return PubAck{}, publishErr(subject, fmt.Sprintf("%q: add a stream whose subjects match it (Config.Streams or AddStream)", subject), nil, transport.ErrNoStream)
	}
	if expect != "" && s.cfg.Name != expect {
		return PubAck{}, publishErr(subject, fmt.Sprintf("stored by stream %s, expected %s", s.cfg.Name, expect), nil, ErrWrongStream)
	}
	now := b.now()
	if id != "" {
		if e, ok := s.dedup[id]; ok && now.Sub(e.at) < s.cfg.Duplicates {
			return PubAck{Stream: s.cfg.Name, Sequence: e.seq, Duplicate: true}, nil
		}
	}
	hc, err := s.checkHeadersLocked(subject, header, now)
	if err != nil {
		return PubAck{}, publishErr(subject, "", err)
	}
	m := s.storeLocked(subject, header, data, id, hc, now)
	s.dispatchLocked(now)
	return PubAck{Stream: s.cfg.Name, Sequence: m.seq}, nil
}

// streamForLocked is the stream that stores subject, nil if none.
func (b *Bus) streamForLocked(subject string) *stream {
	for _, o := range b.order {
		if matchAny(o.cfg.Subjects, subject) {
			return o
		}
	}
	return nil
}

// storeLocked stores a message whose headers passed checkHeadersLocked (hc
// is what they asked for) and counts it pending for the durables whose
// filter takes it; dispatchLocked then hands it out. A schedule replaces
// the pending schedule on its subject (JetStream's roll-up); an event a
// schedule stored with Nats-Schedule-Next "purge" removes that schedule.
func (s *stream) storeLocked(subject string, header nats.Header, data []byte, id string, hc headerChecks, now time.Time) *storedMsg {
	if hc.schedule != nil {
		s.purgeSubjectLocked(subject)
	}
	m := &storedMsg{seq: uint64(len(s.msgs)) + 1, subject: subject, header: nats.Header(cloneHeader(header)), data: bytes.Clone(data), time: now}
	if hc.schedule != nil && m.header.Get(transport.HeaderRollup) == "" {
		m.header.Set(transport.HeaderRollup, "sub") // as the server stores a schedule
	}
	s.msgs = append(s.msgs, m)
	s.bySubject[subject] = append(s.bySubject[subject], m)
	if id != "" {
		s.dedup[id] = dedupEntry{seq: m.seq, at: now}
		s.pruneDedup(now)
	}
	for _, d := range s.consumers {
		if matchAny(d.spec.FilterSubjects, subject) {
			d.numPending++
		}
	}
	if hc.ttl > 0 {
		s.b.expireAtLocked(s, m, now.Add(hc.ttl))
	}
	if hc.schedule != nil {
		s.b.addScheduleLocked(s, m, *hc.schedule, now)
	}
	if hc.purgeScheduler != "" {
		s.purgeSubjectLocked(hc.purgeScheduler)
	}
	return m
}

// dispatchLocked lets every durable of the stream hand out what is ready.
func (s *stream) dispatchLocked(now time.Time) {
	for _, d := range s.sortedConsumers() {
		d.dispatchLocked(now)
	}
}

// Tick re-reads the clock and redelivers whatever became due: nak delays
// that passed, AckWaits that expired, pauses that ended. With the system clock the bus's timer
// does it by itself; with a manual clock call it after moving the clock.
func (b *Bus) Tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tickLocked()
}

func (b *Bus) tickLocked() {
	if b.closed {
		return
	}
	now := b.now()
	// Schedules and TTLs first: what a schedule stores now is handed out by
	// the same tick.
	b.fireSchedulesLocked(now)
	b.expireMessagesLocked(now)
	for _, s := range b.order {
		for _, d := range s.sortedConsumers() {
			d.expireLocked(now)
			d.dispatchLocked(now)
		}
	}
}

// schedule makes sure the timer goroutine wakes by t (lock held).
func (b *Bus) scheduleLocked(t time.Time) {
	if b.manual || b.closed {
		return
	}
	if !b.armed.IsZero() && !t.Before(b.armed) {
		return
	}
	b.armed = t
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// nextEventLocked is the earliest future ack deadline, redelivery time or
// pause end of every durable, schedule fire time or message expiry (zero:
// none). What is
// already due and waits only for credit needs no timer.
func (b *Bus) nextEventLocked(now time.Time) time.Time {
	next := b.nextTimedLocked(now)
	for _, s := range b.order {
		for _, d := range s.consumers {
			if d.pausedUntil.After(now) && (next.IsZero() || d.pausedUntil.Before(next)) {
				next = d.pausedUntil
			}
			for _, e := range d.pending {
				t := e.deadline
				if e.waiting {
					t = e.due
				}
				if t.After(now) && (next.IsZero() || t.Before(next)) {
					next = t
				}
			}
		}
	}
	return next
}

// timers is the bus's timer goroutine (system clock only): it sleeps until
// the earliest ack deadline or redelivery time, then ticks.
func (b *Bus) timers() {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		b.mu.Lock()
		now := b.now()
		// Whatever became due since the last tick (a deadline passed while
		// the timer was re-armed) is acted on now: nextEventLocked only
		// looks after now.
		b.tickLocked()
		next := b.nextEventLocked(now)
		b.armed = next
		b.mu.Unlock()
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-b.stop:
			return
		case <-b.wake:
		case <-timer.C:
		}
	}
}

// Close ends every consumer (their Err matches transport.ErrConsumerEnded
// and transport.ErrClosed), stops the timer goroutine and waits for every goroutine of
// the bus. Later publishes and consumes fail with transport.ErrClosed. Idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	var ended []*consumer
	for _, s := range b.order {
		for _, d := range s.sortedConsumers() {
			for _, c := range slices.Clone(d.pullers) {
				c.endLocked(fmt.Errorf("%w: %w: bus closed", transport.ErrConsumerEnded, transport.ErrClosed))
				ended = append(ended, c)
			}
		}
	}
	close(b.stop)
	b.mu.Unlock()
	notifyEnded(ended)
	b.wg.Wait()
	return nil
}

// stream is one stream: its messages (msgs[i].seq == i+1, removed ones
// kept as tombstones: see removeLocked), durables and pending schedules.
type stream struct {
	b         *Bus
	cfg       StreamConfig
	msgs      []*storedMsg
	removed   int // tombstones in msgs
	dedup     map[string]dedupEntry
	dedupSeen int // len(dedup) at the last prune
	consumers map[string]*durable
	schedules map[string]*schedEntry // by schedule subject
	// bySubject are the messages stored on each subject and not removed,
	// in order: what a roll-up or a schedule's end removes.
	bySubject map[string][]*storedMsg
	deleted   bool
}

type storedMsg struct {
	seq     uint64
	subject string // "" once removed: no filter matches it then
	header  nats.Header
	data    []byte
	time    time.Time
	deleted bool
}

type dedupEntry struct {
	seq uint64
	at  time.Time
}

// pruneDedup drops ids older than the window once the map has doubled since
// the last prune (amortized O(1) per publish).
func (s *stream) pruneDedup(now time.Time) {
	if len(s.dedup) < 2*s.dedupSeen+64 {
		return
	}
	for id, e := range s.dedup {
		if now.Sub(e.at) >= s.cfg.Duplicates {
			delete(s.dedup, id)
		}
	}
	s.dedupSeen = len(s.dedup)
}

// sortedConsumers returns the stream's durables by name, so that every walk
// over them is in the same order.
func (s *stream) sortedConsumers() []*durable {
	out := make([]*durable, 0, len(s.consumers))
	for _, d := range s.consumers {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *durable) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}

// cloneHeader copies h, values included.
func cloneHeader(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		out[k] = slices.Clone(vs)
	}
	return out
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
