// Package logs holds the module's one adapter from log/slog to Watermill's
// logger interface and the warn helper every package logs through.
// Watermill's LoggerAdapter has no warn level; retries, stalls and changes
// an operator must see are warnings, so the adapter adds one.
package logs

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// WarnLogger is implemented by logger adapters that have a warning level,
// which watermill.LoggerAdapter lacks (NewSlog's adapter has it).
type WarnLogger interface {
	Warn(msg string, err error, fields watermill.LogFields)
}

// LevelLogger is implemented by logger adapters that can tell whether a
// level is logged (NewSlog's can), so that per-event debug lines below the
// level cost nothing.
type LevelLogger interface {
	Enabled(level slog.Level) bool
}

// NewSlog returns a watermill.LoggerAdapter over l (slog.Default() when
// nil) that also implements WarnLogger and LevelLogger.
func NewSlog(l *slog.Logger) watermill.LoggerAdapter {
	if l == nil {
		l = slog.Default()
	}
	return slogAdapter{LoggerAdapter: watermill.NewSlogLogger(l), l: l}
}

type slogAdapter struct {
	watermill.LoggerAdapter
	l *slog.Logger
}

func (a slogAdapter) Enabled(level slog.Level) bool {
	return a.l.Enabled(context.Background(), level)
}

func (a slogAdapter) Warn(msg string, err error, fields watermill.LogFields) {
	args := make([]any, 0, 2*len(fields)+2)
	for k, v := range fields {
		args = append(args, k, v)
	}
	if err != nil {
		args = append(args, "error", err)
	}
	a.l.Log(context.Background(), slog.LevelWarn, msg, args...)
}

func (a slogAdapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return NewSlog(a.l.With(args...))
}

// Warn logs at warn level when log has one (WarnLogger), else at info with
// the error as a field.
func Warn(log watermill.LoggerAdapter, msg string, err error, fields watermill.LogFields) {
	if w, ok := log.(WarnLogger); ok {
		w.Warn(msg, err, fields)
		return
	}
	if err != nil {
		fields = fields.Add(watermill.LogFields{"error": err.Error()})
	}
	log.Info(msg, fields)
}

// DebugEnabled reports whether log logs at debug level: false only when it
// tells its level (LevelLogger) and debug is below it, or it is Watermill's
// NopLogger.
func DebugEnabled(log watermill.LoggerAdapter) bool {
	if ll, ok := log.(LevelLogger); ok {
		return ll.Enabled(slog.LevelDebug)
	}
	_, nop := log.(watermill.NopLogger)
	return !nop
}
