package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Headers a dead letter carries on top of the original message's headers.
const (
	// HeaderSubject is the subject the message was originally published on.
	HeaderSubject = "Dlq-Original-Subject"
	// HeaderStream is the stream that stored the original message.
	HeaderStream = "Dlq-Original-Stream"
	// HeaderConsumer is the durable consumer that gave up on it.
	HeaderConsumer = "Dlq-Original-Consumer"
	// HeaderStreamSeq is the original message's stream sequence (decimal).
	HeaderStreamSeq = "Dlq-Original-Stream-Seq"
	// HeaderDeliveries is how many times the consumer delivered it (decimal).
	HeaderDeliveries = "Dlq-Delivery-Count"
	// HeaderHandler is the Watermill handler name, else the consumer (the
	// router's group); absent when neither is known.
	HeaderHandler = "Dlq-Handler"
	// HeaderReason is one of the Reason* constants.
	HeaderReason = "Dlq-Reason"
	// HeaderError is the error text: CR, LF and NUL replaced by spaces,
	// truncated to DeadLetterConfig.MaxErrorLen bytes.
	HeaderError = "Dlq-Error"
	// HeaderTime is when the message was dead-lettered, RFC 3339 UTC with
	// nanoseconds, from DeadLetterConfig.Clock.
	HeaderTime = "Dlq-Time"
	// HeaderTruncated, present when the dead letter's payload was cut to fit
	// the broker's max payload, is the original payload's size in bytes;
	// the original stays in its stream (HeaderStream, HeaderStreamSeq).
	HeaderTruncated = "Dlq-Truncated"
	// HeaderOrderKey is the order key of an event dead-lettered by a keyed
	// group (GroupConfig.OrderKey): the key's later events were handled
	// after it, so the entity it names has a gap an operator may need to
	// mend (replay the dead letter, or compensate).
	HeaderOrderKey = "Dlq-Order-Key"
	// HeaderOriginalPrefix prefixes the original message's Nats-* headers
	// (Nats-Msg-Id becomes Dlq-Original-Nats-Msg-Id). Those headers steer a
	// JetStream publish (de-duplication id, expected stream or sequence,
	// rollup, TTL), so copying them as they are could refuse, drop or roll up
	// the dead letter; moved, they keep the original intact for a replay.
	HeaderOriginalPrefix = "Dlq-Original-"
)

// DeadLetterConfig configures a DeadLetterer.
type DeadLetterConfig struct {
	// SubjectPrefix: a dead letter of subject S is published on
	// SubjectPrefix + "." + S. Default "dlq" (the DLQ stream listens on dlq.>).
	SubjectPrefix string
	// Stream, when set, is the stream the dead letter must land in
	// (Nats-Expected-Stream): a publish that another stream would capture
	// fails instead. The transport applies it (the router passes it to
	// jetstream.TransportConfig.DeadLetterStream). Default "": whichever
	// stream listens on the subject.
	Stream string
	// PublishTimeout bounds one dead-letter publish (waiting for the stream's
	// ack). It is applied on a context that ignores the message's own
	// cancellation, so a handler timeout or shutdown does not prevent storing
	// the dead letter. Default 5s.
	PublishTimeout time.Duration
	// MaxErrorLen caps the HeaderError value in bytes (cut on a UTF-8
	// boundary). Default 1024; must be > 0.
	MaxErrorLen int
	// Clock stamps HeaderTime. Default envelope.SystemClock.
	Clock envelope.Clock
	// RetryBackoff is the delay before the redelivery of a message whose
	// dead-letter publish failed (the message is Nacked, never acked).
	// Default: the zero Backoff (1s doubling to 1m, ±20%).
	RetryBackoff transport.Backoff
}

// Defaults of DeadLetterConfig.
const (
	defaultDeadLetterPrefix = "dlq"
	defaultPublishTimeout   = 5 * time.Second
	defaultMaxErrorLen      = 1024
)

func (c *DeadLetterConfig) setDefaults() {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = defaultDeadLetterPrefix
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.MaxErrorLen == 0 {
		c.MaxErrorLen = defaultMaxErrorLen
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c DeadLetterConfig) Validate() error {
	if err := envelope.ValidateSubject(c.SubjectPrefix); err != nil {
		return fmt.Errorf("%w: SubjectPrefix: %w", envelope.ErrInvalidConfig, err)
	}
	if c.PublishTimeout < 0 {
		return fmt.Errorf("%w: PublishTimeout %s is negative", envelope.ErrInvalidConfig, c.PublishTimeout)
	}
	if c.MaxErrorLen < 0 {
		return fmt.Errorf("%w: MaxErrorLen %d is negative", envelope.ErrInvalidConfig, c.MaxErrorLen)
	}
	if c.Stream != "" {
		if err := transport.ValidateName(c.Stream); err != nil {
			return fmt.Errorf("%w: Stream: %w", envelope.ErrInvalidConfig, err)
		}
	}
	if err := c.RetryBackoff.Validate(); err != nil {
		return fmt.Errorf("RetryBackoff: %w", err)
	}
	return nil
}

// Publisher stores dead letters: the transport's dead-letter publish
// (jetstream.Transport, memory.Bus). transport.Transport implements it.
type Publisher interface {
	PublishDeadLetter(ctx context.Context, msg *transport.Message) error
	MaxPayload() int
}

// DeadLetterer stores poison messages in the dead-letter stream: the original
// message unchanged (payload and headers, Nats-* headers moved under
// HeaderOriginalPrefix) on SubjectPrefix.<original subject>, with the Header*
// headers added and a de-duplication id stable per (stream, stream sequence),
// so that the same message dead-lettered twice (a retried publish) is stored
// once within the DLQ stream's duplicate window. A publish waits for the
// stream's ack: success means stored. A dead letter that would not fit the
// broker's max payload keeps its headers and a truncated payload
// (HeaderTruncated says how large the original was; it stays in its stream
// at HeaderStream / HeaderStreamSeq). Safe for concurrent use.
type DeadLetterer struct {
	cfg DeadLetterConfig
	pub Publisher

	// verdicts remembers, per stream message, the verdict whose dead-letter
	// publish failed, so that its redeliveries retry the publish without
	// running the handler again (bounded: the oldest entries go first).
	mu       sync.Mutex
	verdicts map[verdictKey]verdict
	order    []verdictKey
}

// verdictKey is one stream message as one consumer (group) sees it: two
// groups of one router judge the same event on their own.
type verdictKey struct {
	stream   string
	consumer string
	seq      uint64
}

type verdict struct {
	reason string
	err    error
}

// maxVerdicts bounds the verdicts a DeadLetterer remembers.
const maxVerdicts = 10000

// NewDeadLetterer returns a DeadLetterer publishing through pub. Errors
// match envelope.ErrInvalidConfig.
func NewDeadLetterer(pub Publisher, cfg DeadLetterConfig) (*DeadLetterer, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: nil dead-letter Publisher", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &DeadLetterer{cfg: cfg, pub: pub, verdicts: make(map[verdictKey]verdict)}, nil
}

// Record is one message to dead-letter and why.
type Record struct {
	// Subject, Header and Data are the original message as stored in its
	// stream. Subject is required.
	Subject string
	Header  map[string][]string
	Data    []byte
	// Stream, Consumer, StreamSeq and Deliveries say where it came from;
	// zero values are left out of the headers.
	Stream     string
	Consumer   string
	StreamSeq  uint64
	Deliveries uint64
	// Handler names the handler (group), if known.
	Handler string
	// OrderKey is the event's order key in a keyed group ("" otherwise).
	OrderKey string
	// Reason is one of the Reason* constants; ReasonHandlerError if empty.
	Reason string
	// Err is the failure, written in HeaderError (may be nil).
	Err error
}

// Subject returns the dead-letter subject of an original subject.
func (d *DeadLetterer) Subject(original string) string {
	return d.cfg.SubjectPrefix + "." + original
}

// MsgID returns the de-duplication id of the dead letter of rec:
// "dlq:<stream>:<consumer>:<seq>" when the stream sequence is known (the
// consumer in it: two groups that both give up on one event each store
// their dead letter), else a hash of the
// subject, the original Nats-Msg-Id and the payload.
func MsgID(rec Record) string {
	if rec.Stream != "" && rec.StreamSeq > 0 {
		return "dlq:" + rec.Stream + ":" + rec.Consumer + ":" + strconv.FormatUint(rec.StreamSeq, 10)
	}
	h := sha256.New()
	h.Write([]byte(rec.Subject))
	h.Write([]byte{0})
	h.Write([]byte(header(rec.Header).get(marshaler.HeaderMsgID)))
	h.Write([]byte{0})
	h.Write(rec.Data)
	return "dlq:sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Send publishes rec to the dead-letter stream and waits for the stream's
// ack. A duplicate (already stored under the same MsgID) is a success.
// Errors match transport.ErrDeadLetter (and the transport's cause, e.g.
// transport.ErrNoStream when no stream listens on the dead-letter subject).
func (d *DeadLetterer) Send(ctx context.Context, rec Record) error {
	if rec.Subject == "" {
		return fmt.Errorf("%w: %w: record without subject", transport.ErrDeadLetter, ErrNoRawMessage)
	}
	if rec.Reason == "" {
		rec.Reason = ReasonHandlerError
	}
	h := make(header, len(rec.Header)+11)
	for k, vs := range rec.Header {
		switch {
		case hasPrefixFold(k, "Dlq-"):
			// A replayed dead letter failing again: its old Dlq-* headers are
			// replaced by the new ones below.
			continue
		case hasPrefixFold(k, "Nats-"):
			h[HeaderOriginalPrefix+k] = append([]string(nil), vs...)
		default:
			h[k] = append([]string(nil), vs...)
		}
	}
	h.set(HeaderSubject, rec.Subject)
	setIf(h, HeaderStream, rec.Stream)
	setIf(h, HeaderConsumer, rec.Consumer)
	if rec.StreamSeq > 0 {
		h.set(HeaderStreamSeq, strconv.FormatUint(rec.StreamSeq, 10))
	}
	if rec.Deliveries > 0 {
		h.set(HeaderDeliveries, strconv.FormatUint(rec.Deliveries, 10))
	}
	setIf(h, HeaderHandler, headerText(rec.Handler, 256))
	setIf(h, HeaderOrderKey, headerText(rec.OrderKey, 256))
	h.set(HeaderReason, headerText(rec.Reason, 256))
	if rec.Err != nil {
		h.set(HeaderError, headerText(rec.Err.Error(), d.cfg.MaxErrorLen))
	}
	h.set(HeaderTime, d.cfg.Clock.Now().UTC().Format(time.RFC3339Nano))

	subject := d.Subject(rec.Subject)
	data := rec.Data
	if limit := d.pub.MaxPayload(); limit > 0 {
		// Room for the subject, the id header JetStream adds and framing.
		room := limit - headerSize(h) - len(subject) - 256
		if len(data) > room {
			h.set(HeaderTruncated, strconv.Itoa(len(data)))
			data = data[:max(room-64, 0)]
		}
	}
	msg := &transport.Message{Subject: subject, Header: h, Data: data, ID: MsgID(rec)}
	if err := d.pub.PublishDeadLetter(ctx, msg); err != nil {
		return fmt.Errorf("%w: %s (%s, stream %s seq %d): %w", transport.ErrDeadLetter, subject, rec.Reason, rec.Stream, rec.StreamSeq, err)
	}
	return nil
}

// headerSize is the wire size of h (NATS/1.0 line, "key: value" lines).
func headerSize(h header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}

// Middleware dead-letters the messages whose handler error carries a verdict
// (Classify: DeadLetter, Permanent, unmarshal, schema version) and returns
// nil for them, so that the router acks them; ordinary errors pass through
// untouched (Retry decides about those). The messages the failed handler
// produced are dropped. If the dead-letter publish fails, the returned error
// joins the handler's error and one matching transport.ErrDeadLetter, the message is
// marked for redelivery after RetryBackoff, and the verdict is remembered:
// its redeliveries retry the publish without calling the handler again. An
// event is never acked while it is nowhere.
func (d *DeadLetterer) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		dv := deliveryOf(msg)
		key := verdictKey{dv.Stream, dv.Consumer, dv.StreamSeq}
		var (
			out []*message.Message
			err error
		)
		if v, ok := d.verdict(key); ok {
			err = DeadLetter(v.reason, v.err)
		} else {
			out, err = h(msg)
		}
		if err == nil {
			return out, nil
		}
		reason, ok := Classify(err)
		if !ok {
			return nil, err
		}
		if errors.Is(context.Cause(msg.Context()), transport.ErrCloseTimeout) {
			// Cut off at the close deadline: the event was nacked and will
			// be delivered again; a dead letter now would be a second copy.
			return nil, err
		}
		rec := recordOf(msg, dv)
		rec.Reason, rec.Err = reason, verdictCause(err)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), d.cfg.PublishTimeout)
		defer cancel()
		if pubErr := d.Send(ctx, rec); pubErr != nil {
			d.remember(key, verdict{reason: reason, err: rec.Err})
			joined := errors.Join(err, pubErr)
			setVerdict(msg, transport.Retry(d.cfg.RetryBackoff.Delay(dv.Attempt), joined))
			return nil, joined
		}
		d.forget(key)
		v := transport.DeadLetter(reason, err)
		v.DeadLetterSubject = d.Subject(rec.Subject)
		setVerdict(msg, v)
		return nil, nil
	}
}

func (d *DeadLetterer) verdict(k verdictKey) (verdict, bool) {
	if k.seq == 0 {
		return verdict{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.verdicts[k]
	return v, ok
}

func (d *DeadLetterer) remember(k verdictKey, v verdict) {
	if k.seq == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.verdicts[k]; !ok {
		d.order = append(d.order, k)
		if len(d.order) > maxVerdicts {
			delete(d.verdicts, d.order[0])
			d.order = d.order[1:]
		}
	}
	d.verdicts[k] = v
}

func (d *DeadLetterer) forget(k verdictKey) {
	if k.seq == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.verdicts[k]; ok {
		delete(d.verdicts, k)
		for i, o := range d.order {
			if o == k {
				d.order = append(d.order[:i], d.order[i+1:]...)
				break
			}
		}
	}
}

// recordOf builds the record of a delivered message: the message as the
// transport delivered it (headers and payload as stored) when it has them,
// else the Watermill payload with its metadata as headers.
func recordOf(msg *message.Message, dv *transport.Delivery) Record {
	rec := Record{
		Subject: dv.Subject, Stream: dv.Stream, Consumer: dv.Consumer,
		StreamSeq: dv.StreamSeq, Deliveries: dv.Attempt, OrderKey: dv.Key,
		Handler: message.HandlerNameFromCtx(msg.Context()),
	}
	if rec.Handler == "" {
		// The router's own pipeline has no Watermill handler: its group
		// (the durable) is the handler.
		rec.Handler = dv.Consumer
	}
	if dv.Data != nil || dv.Header != nil {
		rec.Header, rec.Data = dv.Header, dv.Data
		return rec
	}
	if rec.Subject == "" {
		rec.Subject = message.SubscribeTopicFromCtx(msg.Context())
	}
	rec.Data = msg.Payload
	rec.Header = make(map[string][]string, len(msg.Metadata))
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, "js-") || strings.HasPrefix(k, "dlq-") || !validHeader(k, v) {
			continue
		}
		rec.Header[k] = []string{v}
	}
	return rec
}

// Undecodable is a hook for subscriber.Config.OnUndecodable, for users of
// the Watermill Subscriber in a plain Watermill router (the router's own
// pipeline dead-letters undecodable messages through the stack): it
// dead-letters a message that could not be decoded, with reason
// ReasonSchemaVersion when err matches marshaler.ErrUnknownSchemaMajor, else
// ReasonUnmarshal (or the verdict err carries). It returns nil only once the
// dead letter is stored; the subscriber acks the message after that, and
// naks it otherwise.
func (d *DeadLetterer) Undecodable(ctx context.Context, dv *transport.Delivery, err error) error {
	if dv == nil {
		return fmt.Errorf("%w: %w: nil delivery", transport.ErrDeadLetter, ErrNoRawMessage)
	}
	reason, ok := Classify(err)
	if !ok {
		reason = ReasonUnmarshal
	}
	rec := Record{
		Subject: dv.Subject, Header: dv.Header, Data: dv.Data, Reason: reason, Err: err,
		Stream: dv.Stream, Consumer: dv.Consumer, StreamSeq: dv.StreamSeq, Deliveries: dv.Attempt, Handler: dv.Consumer,
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.PublishTimeout)
	defer cancel()
	return d.Send(pctx, rec)
}

// verdictCause strips a top-level DeadLetterError, whose reason already has
// its own header, so that HeaderError reads as the failure itself (and is
// absent for a verdict without a cause).
func verdictCause(err error) error {
	if dl, ok := err.(*DeadLetterError); ok {
		return dl.Err
	}
	return err
}

func setIf(h header, k, v string) {
	if v != "" {
		h.set(k, v)
	}
}

// header is a NATS message's headers, keys as they are (NATS does not
// canonicalise them).
type header map[string][]string

func (h header) get(k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (h header) set(k, v string) { h[k] = []string{v} }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// headerText makes s fit a NATS header value: CR, LF and NUL become spaces,
// and it is cut to at most n bytes on a UTF-8 boundary.
func headerText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func validHeader(k, v string) bool {
	if k == "" || strings.ContainsAny(k, ": \r\n\x00") {
		return false
	}
	return !strings.ContainsAny(v, "\r\n\x00")
}
