package events

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// Router consumes events through durable JetStream consumers and dispatches
// them by type to handlers (see package router).
type Router = router.Router

// RouterConfig configures a Router (see router.Config for every default).
type RouterConfig = router.Config

// Group is one durable consumer and its handlers.
type Group = router.Group

// HandlerFunc handles one event; see router.HandlerFunc for what its error means.
type HandlerFunc = router.HandlerFunc

// NewRouter returns a Router consuming cfg.Stream on nc, which it never closes.
func NewRouter(nc *nats.Conn, cfg RouterConfig) (*Router, error) { return router.New(nc, cfg) }

// Handle registers a typed handler: the event's data is decoded into a T
// before fn is called. See router.Handle.
func Handle[T any](g *Group, eventType string, fn func(ctx context.Context, e *Event, data T) error, opts ...router.HandlerOption) *Group {
	return router.Handle(g, eventType, fn, opts...)
}

// AcceptMajors declares the schema_version majors a handler accepts (default 1).
func AcceptMajors(majors ...int) router.HandlerOption { return router.AcceptMajors(majors...) }

// CorrelationID returns the correlation id of the conversation ctx belongs to
// (set by the router for every handler), or "".
func CorrelationID(ctx context.Context) string { return envelope.CorrelationID(ctx) }

// WithCorrelationID returns ctx carrying a correlation id: events published
// with it carry it as ce-correlationid.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return envelope.WithCorrelationID(ctx, id)
}

// CausationID returns the id of the event being handled in ctx, or "".
func CausationID(ctx context.Context) string { return envelope.CausationID(ctx) }

// NewSlogLogger adapts a *slog.Logger (nil: slog.Default()) to Watermill's
// logger interface, with a real warn level.
func NewSlogLogger(l *slog.Logger) watermill.LoggerAdapter { return middleware.NewSlogLogger(l) }
