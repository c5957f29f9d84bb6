package middleware

import (
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/internal/logs"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
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
// attempt, correlation id and group: received, handled and skipped (the
// verdict's reason: "Duplicate event skipped", "Event of unknown type
// acked") at debug; a failed attempt that will be retried at warn (info if
// the adapter has no WarnLogger); dead-lettered and failed dead-letter
// publishes at error. Each failure is one line carrying the error; a stack
// trace appears only in a recovered panic's error. Placed outside the
// DeadLetterer, it reads the verdict the inner middleware decided
// (transport.Verdict). It logs and passes everything through: it never
// changes an outcome.
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
		v := VerdictOf(msg)
		switch {
		case err == nil && v.Kind == transport.DeadLettered:
			fields := l.fields(msg)
			fields["reason"] = v.Reason
			fields["dead_letter_subject"] = v.DeadLetterSubject
			l.cfg.Logger.Error("Event dead-lettered", v.Err, fields)
		case err == nil:
			if l.debug {
				switch {
				case v.Kind == transport.Skipped && v.Reason == transport.SkipUnknownType:
					l.cfg.Logger.Debug("Event of unknown type acked", l.fields(msg))
				case v.Kind == transport.Skipped:
					l.cfg.Logger.Debug("Duplicate event skipped, acked", l.fields(msg))
				default:
					l.cfg.Logger.Debug("Event handled", l.fields(msg))
				}
			}
		case errors.Is(err, transport.ErrDeadLetter):
			fields := l.fields(msg)
			if v.Kind == transport.Retried {
				fields["retry_in"] = v.Delay.String()
			}
			l.cfg.Logger.Error("Event not dead-lettered, will be redelivered", err, fields)
		default:
			fields := l.fields(msg)
			if v.Kind == transport.Retried {
				fields["retry_in"] = v.Delay.String()
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
