package router

import (
	"context"
	"fmt"
	"time"
)

// running is what Run started: the groups' pipelines, plain and
// partitioned.
type running struct {
	runs  []*groupRun
	parts []*partitionedRun
}

// startAll starts every group; a group that cannot start stops those
// started before it and fails the start.
func (r *Router) startAll(ctx context.Context, groups []*Group) (*running, error) {
	rs := &running{}
	for _, g := range groups {
		h, idem, err := r.stack(g)
		if err != nil {
			rs.stop(r.cfg.CloseTimeout)
			return nil, err
		}
		if g.cfg.partitioned() {
			pr, err := newPartitionedRun(r, g, h, idem)
			if err == nil {
				err = pr.start(ctx)
			}
			if err != nil {
				rs.stop(r.cfg.CloseTimeout)
				return nil, err
			}
			rs.parts = append(rs.parts, pr)
			continue
		}
		gr := newGroupRun(r, g, h, idem)
		if err := gr.start(ctx); err != nil {
			rs.stop(r.cfg.CloseTimeout)
			return nil, fmt.Errorf("group %s: %w", g.cfg.Durable, err)
		}
		rs.runs = append(rs.runs, gr)
	}
	return rs, nil
}

// ended delivers the first group that ended for good (its consumer could
// not be recovered).
func (rs *running) ended() <-chan error {
	ended := make(chan error, len(rs.runs)+len(rs.parts))
	for _, gr := range rs.runs {
		go func() {
			select {
			case <-gr.run.Ended():
				if err := gr.run.Err(); err != nil {
					ended <- fmt.Errorf("group %s: %w", gr.g.cfg.Durable, err)
				}
			case <-gr.run.Stopped():
			}
		}()
	}
	for _, pr := range rs.parts {
		go func() {
			select {
			case err := <-pr.ended:
				ended <- fmt.Errorf("group %s: %w", pr.g.cfg.Durable, err)
			case <-pr.stopCh:
			}
		}()
	}
	return ended
}

// stop stops every group: every group's intake first, then one shared
// close deadline for all their in-flight handlers (shutdown takes
// closeTimeout, not one per group).
func (rs *running) stop(closeTimeout time.Duration) []error {
	for _, gr := range rs.runs {
		gr.run.StopIntake()
	}
	for _, pr := range rs.parts {
		pr.stopIntake()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for _, gr := range rs.runs {
		for _, err := range gr.run.Drain(ctx) {
			errs = append(errs, fmt.Errorf("group %s: CloseTimeout %s: %w", gr.g.cfg.Durable, closeTimeout, err))
		}
	}
	for _, pr := range rs.parts {
		errs = append(errs, pr.drain(ctx)...)
	}
	return errs
}
