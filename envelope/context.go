package envelope

import "context"

// Correlation travels in a context.Context so that an event published while
// handling another carries the conversation's correlation id and the handled
// event's id as causation id, whichever publisher (jetevents, the CQRS bus,
// Watermill messages returned by a handler) sends it. The router puts both in
// every handler's context; publishers read them back.

type ctxKey int

const (
	relationsKey ctxKey = iota
	organizationKey
)

// relations is the value under relationsKey: both ids travel in one context
// value, so that the router sets them with one allocation, and the nearest
// setter of either wins as with separate keys.
type relations struct{ correlation, causation string }

func relationsOf(ctx context.Context) relations {
	r, _ := ctx.Value(relationsKey).(*relations)
	if r == nil {
		return relations{}
	}
	return *r
}

// WithCorrelationID returns ctx carrying a correlation id (and the causation
// id ctx already carries).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	r := relationsOf(ctx)
	r.correlation = id
	return context.WithValue(ctx, relationsKey, &r)
}

// CorrelationID returns the correlation id ctx carries, or "".
func CorrelationID(ctx context.Context) string { return relationsOf(ctx).correlation }

// WithCausationID returns ctx carrying a causation id: the id of the event
// being handled, which caused whatever is published with ctx.
func WithCausationID(ctx context.Context, id string) context.Context {
	r := relationsOf(ctx)
	r.causation = id
	return context.WithValue(ctx, relationsKey, &r)
}

// WithRelations returns ctx carrying both ids at once (what the router sets
// for every handler).
func WithRelations(ctx context.Context, correlationID, causationID string) context.Context {
	return context.WithValue(ctx, relationsKey, &relations{correlation: correlationID, causation: causationID})
}

// CausationID returns the causation id ctx carries, or "".
func CausationID(ctx context.Context) string { return relationsOf(ctx).causation }

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
