package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
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
	// HeaderHandler is the Watermill handler name (absent when unknown, as on
	// the advisory path).
	HeaderHandler = "Dlq-Handler"
	// HeaderReason is one of the Reason* constants.
	HeaderReason = "Dlq-Reason"
	// HeaderError is the error text: CR, LF and NUL replaced by spaces,
	// truncated to DeadLetterConfig.MaxErrorLen bytes.
	HeaderError = "Dlq-Error"
	// HeaderTime is when the message was dead-lettered, RFC 3339 UTC with
	// nanoseconds, from DeadLetterConfig.Clock.
	HeaderTime = "Dlq-Time"
	// HeaderOriginalPrefix prefixes the original message's Nats-* headers
	// (Nats-Msg-Id becomes Dlq-Original-Nats-Msg-Id). Those headers steer a
	// JetStream publish (de-duplication id, expected stream or sequence,
	// rollup, TTL), so copying them as they are could refuse, drop or roll up
	// the dead letter; moved, they keep the original intact for a replay.
	HeaderOriginalPrefix = "Dlq-Original-"
)

// Metadata the DeadLetterer middleware sets on a message it dead-lettered
// (the handler chain then returns nil and the router acks), so that outer
// middleware (Logging) can tell "handled" from "dead-lettered".
const (
	MetadataDeadLetterReason  = "dlq-reason"
	MetadataDeadLetterSubject = "dlq-subject"
	MetadataDeadLetterError   = "dlq-error"
)

// DeadLetterConfig configures a DeadLetterer.
type DeadLetterConfig struct {
	// SubjectPrefix: a dead letter of subject S is published on
	// SubjectPrefix + "." + S. Default "dlq" (the DLQ stream listens on dlq.>).
	SubjectPrefix string
	// Stream, when set, is the stream the dead letter must land in
	// (Nats-Expected-Stream): a publish that another stream would capture
	// fails instead. Default "": whichever stream listens on the subject.
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
	RetryBackoff Backoff
	// Logger logs dead letters sent by Undecodable (the subscriber's hook has
	// no Logging middleware around it). Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

// Defaults of DeadLetterConfig.
const (
	DefaultDeadLetterPrefix = "dlq"
	DefaultPublishTimeout   = 5 * time.Second
	DefaultMaxErrorLen      = 1024
)

func (c *DeadLetterConfig) setDefaults() {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultDeadLetterPrefix
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.MaxErrorLen == 0 {
		c.MaxErrorLen = DefaultMaxErrorLen
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match ErrInvalidConfig.
func (c DeadLetterConfig) Validate() error {
	if err := envelope.ValidateSubject(c.SubjectPrefix); err != nil {
		return fmt.Errorf("%w: SubjectPrefix: %w", ErrInvalidConfig, err)
	}
	if c.PublishTimeout < 0 {
		return fmt.Errorf("%w: PublishTimeout %s is negative", ErrInvalidConfig, c.PublishTimeout)
	}
	if c.MaxErrorLen < 0 {
		return fmt.Errorf("%w: MaxErrorLen %d is negative", ErrInvalidConfig, c.MaxErrorLen)
	}
	if c.Stream != "" && strings.ContainsAny(c.Stream, ".*> \t\r\n") {
		return fmt.Errorf("%w: Stream %q is not a stream name", ErrInvalidConfig, c.Stream)
	}
	return c.RetryBackoff.Validate()
}

// DeadLetterer stores poison messages in the dead-letter stream: the original
// message unchanged (payload and headers, Nats-* headers moved under
// HeaderOriginalPrefix) on SubjectPrefix.<original subject>, with the Header*
// headers added and a Nats-Msg-Id stable per (stream, stream sequence), so
// that the same message dead-lettered twice (a retried publish, or both the
// handler path and the advisory path) is stored once within the DLQ stream's
// duplicate window. A publish waits for the stream's ack: success means
// stored. Safe for concurrent use.
type DeadLetterer struct {
	cfg DeadLetterConfig
	js  natsjs.JetStream
}

// NewDeadLetterer returns a DeadLetterer publishing through nc, which it never
// closes. Errors match ErrInvalidConfig.
func NewDeadLetterer(nc *nats.Conn, cfg DeadLetterConfig) (*DeadLetterer, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", ErrInvalidConfig, err)
	}
	return &DeadLetterer{cfg: cfg, js: js}, nil
}

// Record is one message to dead-letter and why.
type Record struct {
	// Subject, Header and Data are the original message as stored in its
	// stream. Subject is required.
	Subject string
	Header  nats.Header
	Data    []byte
	// Stream, Consumer, StreamSeq and Deliveries say where it came from;
	// zero values are left out of the headers.
	Stream     string
	Consumer   string
	StreamSeq  uint64
	Deliveries uint64
	// Handler is the Watermill handler name, if known.
	Handler string
	// Reason is one of the Reason* constants; ReasonHandlerError if empty.
	Reason string
	// Err is the failure, written in HeaderError (may be nil).
	Err error
}

// Subject returns the dead-letter subject of an original subject.
func (d *DeadLetterer) Subject(original string) string {
	return d.cfg.SubjectPrefix + "." + original
}

// MsgID returns the Nats-Msg-Id of the dead letter of rec: "dlq:<stream>:<seq>"
// when the stream sequence is known (the same id whichever path dead-letters
// the message), else a hash of the subject, the original Nats-Msg-Id and the
// payload.
func MsgID(rec Record) string {
	if rec.Stream != "" && rec.StreamSeq > 0 {
		return "dlq:" + rec.Stream + ":" + strconv.FormatUint(rec.StreamSeq, 10)
	}
	h := sha256.New()
	h.Write([]byte(rec.Subject))
	h.Write([]byte{0})
	h.Write([]byte(rec.Header.Get(nats.MsgIdHdr)))
	h.Write([]byte{0})
	h.Write(rec.Data)
	return "dlq:sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Send publishes rec to the dead-letter stream and waits for the stream's
// ack. A duplicate (already stored under the same MsgID) is a success. Errors
// match ErrDeadLetter (and the nats.go cause, e.g. natsjs.ErrNoStreamResponse
// when no stream listens on the dead-letter subject).
func (d *DeadLetterer) Send(ctx context.Context, rec Record) (*natsjs.PubAck, error) {
	if rec.Subject == "" {
		return nil, fmt.Errorf("%w: %w: record without subject", ErrDeadLetter, ErrNoRawMessage)
	}
	if rec.Reason == "" {
		rec.Reason = ReasonHandlerError
	}
	h := make(nats.Header, len(rec.Header)+10)
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
	h.Set(HeaderSubject, rec.Subject)
	setIf(h, HeaderStream, rec.Stream)
	setIf(h, HeaderConsumer, rec.Consumer)
	if rec.StreamSeq > 0 {
		h.Set(HeaderStreamSeq, strconv.FormatUint(rec.StreamSeq, 10))
	}
	if rec.Deliveries > 0 {
		h.Set(HeaderDeliveries, strconv.FormatUint(rec.Deliveries, 10))
	}
	setIf(h, HeaderHandler, headerText(rec.Handler, 256))
	h.Set(HeaderReason, headerText(rec.Reason, 256))
	if rec.Err != nil {
		h.Set(HeaderError, headerText(rec.Err.Error(), d.cfg.MaxErrorLen))
	}
	h.Set(HeaderTime, d.cfg.Clock.Now().UTC().Format(time.RFC3339Nano))

	id := MsgID(rec)
	opts := []natsjs.PublishOpt{natsjs.WithMsgID(id)}
	if d.cfg.Stream != "" {
		opts = append(opts, natsjs.WithExpectStream(d.cfg.Stream))
	}
	subject := d.Subject(rec.Subject)
	ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: rec.Data}, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%s, stream %s seq %d): %w", ErrDeadLetter, subject, rec.Reason, rec.Stream, rec.StreamSeq, err)
	}
	return ack, nil
}

// Middleware dead-letters the messages whose handler error carries a verdict
// (Classify: DeadLetter, Permanent, unmarshal, schema version) and returns
// nil for them, so that the router acks them; ordinary errors pass through
// untouched (Retry decides about those). The messages the failed handler
// produced are dropped. If the dead-letter publish fails, the returned error
// joins the handler's error and one matching ErrDeadLetter, and the message
// is marked for redelivery after RetryBackoff: an event is never acked while
// it is nowhere.
func (d *DeadLetterer) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		reason, ok := Classify(err)
		if !ok {
			return nil, err
		}
		dv := deliveryOf(msg)
		rec := recordOf(msg, dv)
		rec.Handler = message.HandlerNameFromCtx(msg.Context())
		rec.Reason, rec.Err = reason, verdictCause(err)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), d.cfg.PublishTimeout)
		defer cancel()
		if _, pubErr := d.Send(ctx, rec); pubErr != nil {
			nakWithDelay(msg, d.cfg.RetryBackoff.Delay(dv.attempt))
			return nil, errors.Join(err, pubErr)
		}
		msg.Metadata.Set(MetadataDeadLetterReason, reason)
		msg.Metadata.Set(MetadataDeadLetterSubject, d.Subject(rec.Subject))
		msg.Metadata.Set(MetadataDeadLetterError, err.Error())
		return nil, nil
	}
}

// Undecodable is the subscriber's OnUndecodable hook: it dead-letters a
// message that could not be decoded, with reason ReasonSchemaVersion when
// err matches marshaler.ErrUnknownSchemaMajor, else ReasonUnmarshal (or the
// verdict err carries). It returns nil only once the dead letter is stored;
// the subscriber terminates the message after that, and naks it otherwise.
func (d *DeadLetterer) Undecodable(ctx context.Context, msg natsjs.Msg, err error) error {
	if msg == nil {
		return fmt.Errorf("%w: %w: nil message", ErrDeadLetter, ErrNoRawMessage)
	}
	reason, ok := Classify(err)
	if !ok {
		reason = ReasonUnmarshal
	}
	dv := deliveryFromRaw(msg)
	rec := Record{
		Subject: dv.subject, Header: msg.Headers(), Data: msg.Data(),
		Stream: dv.stream, Consumer: dv.consumer, StreamSeq: dv.streamSeq, Deliveries: dv.attempt,
		Handler: message.HandlerNameFromCtx(ctx), Reason: reason, Err: err,
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.PublishTimeout)
	defer cancel()
	fields := watermill.LogFields{"subject": rec.Subject, "stream": rec.Stream, "stream_seq": rec.StreamSeq, "reason": reason}
	if _, pubErr := d.Send(pctx, rec); pubErr != nil {
		d.cfg.Logger.Error("Undecodable message not dead-lettered, will be redelivered", pubErr, fields)
		return pubErr
	}
	d.cfg.Logger.Error("Undecodable message dead-lettered", err, fields)
	return nil
}

// recordOf builds the record of a delivered message: the raw JetStream
// message when the subscriber provided it, else (another transport, such as
// the in-memory bus) the Watermill payload with its metadata as headers,
// minus the transport's own keys.
func recordOf(msg *message.Message, dv delivery) Record {
	rec := Record{
		Subject: dv.subject, Stream: dv.stream, Consumer: dv.consumer,
		StreamSeq: dv.streamSeq, Deliveries: dv.attempt,
	}
	if dv.raw != nil {
		rec.Header, rec.Data = dv.raw.Headers(), dv.raw.Data()
		return rec
	}
	if rec.Subject == "" {
		rec.Subject = message.SubscribeTopicFromCtx(msg.Context())
	}
	rec.Data = msg.Payload
	rec.Header = make(nats.Header, len(msg.Metadata))
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, "js-") || strings.HasPrefix(k, "dlq-") || !validHeader(k, v) {
			continue
		}
		rec.Header[k] = []string{v}
	}
	return rec
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

func setIf(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

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
