package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetevents/events/middleware"
)

// startAdvisoryWatchers starts one MAX_DELIVERIES advisory watcher per group
// (unless disabled): an event that exhausts its deliveries without a verdict
// (the process died mid-handler, AckWait expired every time) still ends in
// the dead-letter stream. It returns the function that stops them all.
func (r *Router) startAdvisoryWatchers(groups []*Group) (stop func() error, err error) {
	var started []*middleware.AdvisoryWatcher
	stopAll := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
		defer cancel()
		var errs []error
		for _, w := range started {
			if err := w.Stop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if r.cfg.DisableAdvisories {
		return stopAll, nil
	}
	for _, g := range groups {
		w, err := middleware.NewAdvisoryWatcher(r.nc, r.dlq, middleware.AdvisoryConfig{
			Stream:        r.cfg.Stream,
			Consumer:      g.cfg.Durable,
			Handler:       g.cfg.Durable,
			CaptureStream: r.cfg.AdvisoryCaptureStream,
			Logger:        r.cfg.Logger,
		})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
			err = w.Start(ctx)
			cancel()
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("group %s: advisory watcher: %w", g.cfg.Durable, err), stopAll())
		}
		started = append(started, w)
	}
	return stopAll, nil
}
