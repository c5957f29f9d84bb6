package envelope

import "context"

// Correlation travels in a context.Context so that an event published while
// handling another carries the conversation's correlation id and the handled
// event's id as causation id, whichever publisher (jetevents, the CQRS bus,
// Watermill messages returned by a handler) sends it. The router puts both in
// every handler's context; publishers read them back.

type ctxKey int

const (
	correlationKey ctxKey = iota
	causationKey
	organizationKey
)

// WithCorrelationID returns ctx carrying a correlation id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id ctx carries, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// WithCausationID returns ctx carrying a causation id: the id of the event
// being handled, which caused whatever is published with ctx.
func WithCausationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, causationKey, id)
}

// CausationID returns the causation id ctx carries, or "".
func CausationID(ctx context.Context) string {
	id, _ := ctx.Value(causationKey).(string)
	return id
}

// WithOrganizationID returns ctx carrying an organization (tenant) id, for
// producers that stamp events from a request's context rather than from
// configuration (the CQRS marshaler's OnPublish hook reads it).
func WithOrganizationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, organizationKey, id)
}

// OrganizationID returns the organization id ctx carries, or "".
func OrganizationID(ctx context.Context) string {
	id, _ := ctx.Value(organizationKey).(string)
	return id
}
