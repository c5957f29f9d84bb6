package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// checkFilters refuses a consumer whose filter subjects the stream does not
// store: such a durable is accepted by the server and waits forever for
// events that can never arrive. Errors match transport.ErrSubscribe and
// envelope.ErrInvalidConfig and name the filter and the stream's subjects, as the
// memory bus does. A server without JetStream fails here, with transport.ErrSubscribe
// and transport.ErrNoJetStream.
//
// What the check cannot judge is let through: a stream that mirrors,
// sources or transforms subjects stores subjects other than its configured
// ones. A stream info that cannot be read otherwise (missing stream, a
// user that may not read it) is left to the durable's setup, which reports
// it (or, for a user without the permission, consumes without the check).
func (t *Transport) checkFilters(ctx context.Context, spec transport.ConsumerSpec) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.APITimeout)
	defer cancel()
	st, err := t.js.Stream(ctx, spec.Stream)
	if err != nil && jetStreamMissing(err) {
		return fmt.Errorf("%w: durable %s on stream %s: %w", transport.ErrSubscribe, spec.Durable, spec.Stream, explainNoJetStream(err))
	}
	if err != nil {
		if !errors.Is(err, natsjs.ErrStreamNotFound) && !errors.Is(err, natsjs.ErrJetStreamNotEnabled) &&
			!errors.Is(err, natsjs.ErrJetStreamNotEnabledForAccount) && ctx.Err() != nil {
			warn(t.cfg.Logger, "Could not read the stream to check the group's filter subjects; consuming without the check",
				ExplainPermission(t.nc, err), watermill.LogFields{"stream": spec.Stream, "consumer": spec.Durable})
		}
		return nil
	}
	cfg := st.CachedInfo().Config
	if cfg.Mirror != nil || len(cfg.Sources) > 0 || cfg.SubjectTransform != nil {
		return nil
	}
	for _, f := range spec.FilterSubjects {
		if !storesAny(cfg.Subjects, f) {
			return fmt.Errorf("%w: %w: durable %s: filter %q is outside stream %s's subjects %v: no event it stores can match; fix the group's filter or the stream's subjects",
				transport.ErrSubscribe, envelope.ErrInvalidConfig, spec.Durable, f, spec.Stream, cfg.Subjects)
		}
	}
	return nil
}

// storesAny reports whether some subject of the stream's patterns matches filter.
func storesAny(streamSubjects []string, filter string) bool {
	for _, s := range streamSubjects {
		if SubjectsOverlap(s, filter) {
			return true
		}
	}
	return false
}
