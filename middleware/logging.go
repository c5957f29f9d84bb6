package middleware

import (
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/internal/logs"
	"github.com/jetevents/events/marshaler"
)

// WarnLogger is implemented by logger adapters that have a warning level,
// which watermill.LoggerAdapter lacks. Logging writes retries at warn through
// it when the adapter has it (NewSlogLogger's does), and at info otherwise.
type WarnLogger = logs.WarnLogger

// LevelLogger is implemented by logger adapters that can tell whether a
// level is logged (NewSlogLogger's can), so that per-event debug lines below
// the level cost nothing.
type LevelLogger = logs.LevelLogger

// NewSlogLogger returns a watermill.LoggerAdapter over l (slog.Default() when
// nil) that also implements WarnLogger and LevelLogger.
func NewSlogLogger(l *slog.Logger) watermill.LoggerAdapter { return logs.NewSlog(l) }

// Marks a message carries when it was acked without its handler running, so
// that outer middleware (Logging, the router's Observe and metrics) can tell
// a skipped event from a handled one. The key starts with "js-": it is
// process-local, never written as a header by the marshaler nor read from
// one, so no producer can fake it.
const (
	// MetadataSkipped holds why the event was skipped: SkippedDuplicate or
	// SkippedUnknownType.
	MetadataSkipped = "js-skipped"
	// SkippedDuplicate: Idempotency found the event already handled (or
	// being handled through another stored copy) and acked it.
	SkippedDuplicate = "duplicate"
	// SkippedUnknownType: no handler of the group takes the event's type
	// and the router acks such events (router.UnknownTypeAck).
	SkippedUnknownType = "unknown_type"
)

// LoggingConfig configures Logging.
type LoggingConfig struct {
	// Logger receives the lines. Default NewSlogLogger(slog.Default()).
	Logger watermill.LoggerAdapter
}

func (c *LoggingConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = NewSlogLogger(nil)
	}
}

// Validate reports an unusable configuration (nothing can be wrong after
// defaults; kept for the package's constructor pattern).
func (c LoggingConfig) Validate() error { return nil }

// Logging logs every delivery's outcome with the event id, type, subject,
// attempt, correlation id and group: received, handled and skipped
// (MetadataSkipped: "Duplicate event skipped", "Event of unknown type acked")
// at debug; a failed attempt that will be retried at warn (info if the
// adapter has no WarnLogger); dead-lettered and failed dead-letter publishes
// at error. Each failure is one line carrying the error; a stack trace
// appears only in a recovered panic's error. Placed outside the DeadLetterer,
// it sees dead-lettered messages through the MetadataDeadLetter* marks. It
// logs and passes everything through: it never changes an outcome.
type Logging struct {
	cfg   LoggingConfig
	debug bool
}

// NewLogging returns the logging middleware configured by cfg.
func NewLogging(cfg LoggingConfig) (*Logging, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Logging{cfg: cfg, debug: DebugEnabled(cfg.Logger)}, nil
}

// Middleware implements the logging described on Logging. Lines below the
// logger's level cost nothing when the adapter tells its level (LevelLogger):
// their fields are never built.
func (l *Logging) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if l.debug {
			l.cfg.Logger.Debug("Event received", l.fields(msg))
		}
		out, err := h(msg)
		reason := msg.Metadata.Get(MetadataDeadLetterReason)
		switch {
		case err == nil && reason != "":
			fields := l.fields(msg)
			fields["reason"] = reason
			fields["dead_letter_subject"] = msg.Metadata.Get(MetadataDeadLetterSubject)
			l.cfg.Logger.Error("Event dead-lettered", errors.New(msg.Metadata.Get(MetadataDeadLetterError)), fields)
		case err == nil:
			if l.debug {
				switch msg.Metadata.Get(MetadataSkipped) {
				case SkippedUnknownType:
					l.cfg.Logger.Debug("Event of unknown type acked", l.fields(msg))
				case SkippedDuplicate:
					l.cfg.Logger.Debug("Duplicate event skipped, acked", l.fields(msg))
				default:
					l.cfg.Logger.Debug("Event handled", l.fields(msg))
				}
			}
		case errors.Is(err, ErrDeadLetter):
			fields := l.fields(msg)
			if d, ok := nakDelayOf(msg); ok {
				fields["retry_in"] = d.String()
			}
			l.cfg.Logger.Error("Event not dead-lettered, will be redelivered", err, fields)
		default:
			fields := l.fields(msg)
			if d, ok := nakDelayOf(msg); ok {
				fields["retry_in"] = d.String()
			}
			l.warn("Event handling failed, will be redelivered", err, fields)
		}
		return out, err
	}
}

// fields are the fields of every line about msg.
func (l *Logging) fields(msg *message.Message) watermill.LogFields {
	dv := deliveryOf(msg)
	fields := watermill.LogFields{
		"event_id":   eventID(msg),
		"event_type": msg.Metadata.Get(marshaler.MetadataType),
		"subject":    dv.Subject,
		"attempt":    dv.Attempt,
	}
	if dv.Consumer != "" {
		fields["group"] = dv.Consumer
	}
	if dv.StreamSeq > 0 {
		fields["stream_seq"] = dv.StreamSeq
	}
	if corr := msg.Metadata.Get(marshaler.MetadataCorrelationID); corr != "" {
		fields["correlation_id"] = corr
	}
	return fields
}

func (l *Logging) warn(msg string, err error, fields watermill.LogFields) {
	logs.Warn(l.cfg.Logger, msg, err, fields)
}

// DebugEnabled reports whether l logs at debug level: false only when l
// tells its level (LevelLogger) and debug is below it.
func DebugEnabled(l watermill.LoggerAdapter) bool { return logs.DebugEnabled(l) }
