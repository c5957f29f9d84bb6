package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/jetevents/events/internal/logs"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// A partitioned group (GroupConfig.Partitions) runs as units: one per
// partition (durable <Durable>-p<n>, filtered on the partition's subjects)
// and one more, the group's own durable, for the events published without
// a partition. Every unit's durable is Exclusive: the transport delivers
// it to one process at a time (JetStream: a pinned priority group), so
// per-key order holds across processes whatever each one believes. Which
// process runs which unit is partition.Assign over the group's live
// members (transport.Membership: a KV bucket with expiring entries on
// JetStream), recomputed by every process at every beat: no coordinator,
// no election. A unit that moves is stopped by its old owner (handlers
// finished, what it held released) and handed over (transport.Handover)
// before the new owner receives anything; a unit whose owner died is taken
// over when the transport's pin times out, once its messages are due for
// redelivery.

// memberName is a process's name in membership sets: host-pid-random,
// unique per router, a valid KV key token.
func memberName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "host"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + uuid.NewString()[:8]
}

// partitionedRun is a partitioned group while the router runs.
type partitionedRun struct {
	r       *Router
	g       *Group
	handler message.HandlerFunc
	idem    *middleware.Idempotency
	ms      transport.Membership
	set     string // <stream>.<durable>
	count   int    // partitions; units are 0..count
	log     watermill.LoggerAdapter
	ctx     context.Context // the values every unit's handlers get
	started time.Time

	mu       sync.Mutex
	units    map[int]*groupRun     // running here
	leaving  map[int]chan struct{} // being handed over, closed when done
	members  int
	lastBeat time.Time
	beatErr  error
	startErr map[int]error

	misplaced, unplaced atomic.Uint64
	warned              sync.Map // unit -> struct{}: one warning per unit

	ended    chan error // a unit that ended for good
	stopCh   chan struct{}
	looping  atomic.Bool
	loopDone chan struct{}
	handing  sync.WaitGroup
}

func newPartitionedRun(r *Router, g *Group, h message.HandlerFunc, idem *middleware.Idempotency) (*partitionedRun, error) {
	ms, ok := r.tr.(transport.Membership)
	if !ok {
		return nil, fmt.Errorf("%w: group %s is partitioned: the transport keeps no membership (transport.Membership)", transport.ErrUnsupported, g.cfg.Durable)
	}
	return &partitionedRun{
		r: r, g: g, handler: h, idem: idem, ms: ms,
		set:      r.cfg.Stream + "." + g.cfg.Durable,
		count:    g.cfg.Partitions.Count,
		log:      r.cfg.Logger.With(watermill.LogFields{"group": g.cfg.Durable, "stream": r.cfg.Stream, "member": r.member}),
		units:    make(map[int]*groupRun),
		leaving:  make(map[int]chan struct{}),
		startErr: make(map[int]error),
		ended:    make(chan error, g.cfg.Partitions.Count+1),
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}, nil
}

// beatEvery is how often a process beats: three beats per MemberTTL.
func (pr *partitionedRun) beatEvery() time.Duration {
	return max(pr.ms.MemberTTL()/3, 10*time.Millisecond)
}

// start joins the group and starts the units assigned to this process; a
// unit that cannot start fails the start (a missing stream, a refused
// permission), as an unpartitioned group's would.
func (pr *partitionedRun) start(ctx context.Context) error {
	pr.ctx, pr.started = ctx, time.Now()
	want, err := pr.beat(ctx)
	if err != nil {
		return fmt.Errorf("group %s: join: %w", pr.g.cfg.Durable, err)
	}
	for _, u := range want {
		if err := pr.startUnit(u); err != nil {
			pr.stopUnits(context.Background())
			_ = pr.ms.Leave(context.Background(), pr.set, pr.r.member)
			return fmt.Errorf("group %s: %w", partition.Durable(pr.g.cfg.Durable, u, pr.count), err)
		}
	}
	pr.looping.Store(true)
	go pr.loop()
	return nil
}

// beat lists this process in the group (with the units it runs) and
// returns the units assigned to it.
func (pr *partitionedRun) beat(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, pr.beatEvery()*2)
	defer cancel()
	pr.mu.Lock()
	info := partition.Member{Started: pr.started, Count: pr.count, PID: os.Getpid()}
	info.Host, _ = os.Hostname()
	for u := range pr.units {
		info.Units = append(info.Units, u)
	}
	pr.mu.Unlock()
	slices.Sort(info.Units)
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	err = pr.ms.Beat(ctx, pr.set, pr.r.member, b)
	var members map[string][]byte
	if err == nil {
		members, err = pr.ms.Members(ctx, pr.set)
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.beatErr = err
	if err != nil {
		return nil, err
	}
	pr.lastBeat = time.Now()
	names := []string{pr.r.member} // this process, even if the list missed it
	for m := range members {
		names = append(names, m)
	}
	assigned := partition.Assign(pr.count+1, names)
	pr.members = len(assigned)
	return assigned[pr.r.member], nil
}

// loop beats and moves units until stop.
func (pr *partitionedRun) loop() {
	defer close(pr.loopDone)
	t := time.NewTicker(pr.beatEvery())
	defer t.Stop()
	for {
		select {
		case <-pr.stopCh:
			return
		case <-t.C:
		}
		want, err := pr.beat(context.Background())
		if err != nil {
			// The units keep running: the transport's pins keep each
			// with one process, whatever the member lists say.
			logs.Warn(pr.log, "Partitioned group: membership beat failed; keeping the partitions held", err, nil)
			continue
		}
		pr.reconcile(want)
	}
}

// reconcile stops (and hands over) the units no longer assigned here and
// starts the ones newly assigned.
func (pr *partitionedRun) reconcile(want []int) {
	pr.mu.Lock()
	var drop []int
	for u := range pr.units {
		if !slices.Contains(want, u) {
			drop = append(drop, u)
		}
	}
	var add []int
	for _, u := range want {
		if _, ok := pr.units[u]; ok {
			continue
		}
		if _, ok := pr.leaving[u]; ok {
			continue // still handing it over (assigned back at once): next beat
		}
		add = append(add, u)
	}
	for _, u := range drop {
		gr := pr.units[u]
		delete(pr.units, u)
		done := make(chan struct{})
		pr.leaving[u] = done
		pr.handing.Add(1)
		go func() {
			defer pr.handing.Done()
			defer close(done)
			pr.handOver(u, gr)
		}()
	}
	pr.mu.Unlock()
	for _, u := range add {
		if err := pr.startUnit(u); err != nil {
			logs.Warn(pr.log, "Partitioned group: partition assigned here could not start; retrying at the next beat", err, watermill.LogFields{"partition": unitName(u, pr.count)})
		}
	}
}

// handOver stops a unit that moved to another process: intake stopped,
// handlers finished within CloseTimeout, then the durable handed over.
func (pr *partitionedRun) handOver(u int, gr *groupRun) {
	gr.run.StopIntake()
	ctx, cancel := context.WithTimeout(context.Background(), pr.r.cfg.CloseTimeout)
	defer cancel()
	for _, err := range gr.run.Drain(ctx) {
		logs.Warn(pr.log, "Partition handed over: a handler did not finish in time", err, watermill.LogFields{"partition": unitName(u, pr.count)})
	}
	if err := gr.run.Handover(ctx); err != nil {
		logs.Warn(pr.log, "Partition handover: the next process receives after the pin times out", err, watermill.LogFields{"partition": unitName(u, pr.count)})
	}
	pr.mu.Lock()
	delete(pr.leaving, u)
	pr.mu.Unlock()
	pr.log.Info("Partition handed over", watermill.LogFields{"partition": unitName(u, pr.count)})
}

// unitName names unit u in logs: its partition, or "unplaced".
func unitName(u, count int) string {
	if u == count {
		return "unplaced"
	}
	return strconv.Itoa(u)
}

// startUnit starts unit u's pipeline.
func (pr *partitionedRun) startUnit(u int) error {
	g := pr.g
	gr := newGroupRun(pr.r, g, pr.handler, pr.idem)
	gr.spec.Exclusive = true
	name := partition.Durable(g.cfg.Durable, u, pr.count)
	if u < pr.count {
		gr.spec.FilterSubjects = make([]string, len(g.cfg.FilterSubjects))
		for i, f := range g.cfg.FilterSubjects {
			gr.spec.FilterSubjects[i] = partition.Filter(f, u)
		}
		gr.spec.Description = fmt.Sprintf("jetevents router group %s, partition %d of %d (settings owned by the group's config)", g.cfg.Durable, u, pr.count)
	} else {
		gr.spec.Description = fmt.Sprintf("jetevents router group %s: its events published without a partition (partitioned in %d; settings owned by the group's config)", g.cfg.Durable, pr.count)
	}
	gr.spec.Durable = name
	gr.log = gr.log.With(watermill.LogFields{"partition": unitName(u, pr.count)})
	gr.unitKey = func(d *transport.Delivery, key string) { pr.checkPlacement(u, d, key) }
	if err := gr.start(pr.ctx); err != nil {
		pr.mu.Lock()
		pr.startErr[u] = err
		pr.mu.Unlock()
		return err
	}
	pr.mu.Lock()
	pr.units[u] = gr
	delete(pr.startErr, u)
	pr.mu.Unlock()
	go func() {
		select {
		case <-gr.run.Ended():
			if err := gr.run.Err(); err != nil {
				pr.ended <- fmt.Errorf("partition %s (%s): %w", unitName(u, pr.count), gr.spec.Durable, err)
			}
		case <-gr.run.Stopped():
		}
	}()
	return nil
}

// checkPlacement counts (and warns once per unit about) events not where
// their key belongs: placed in another partition (a publisher with another
// Count), or published without a partition. They are handled all the
// same; their key's order holds only among the events of one unit.
func (pr *partitionedRun) checkPlacement(u int, d *transport.Delivery, key string) {
	var what string
	switch {
	case u == pr.count:
		pr.unplaced.Add(1)
		what = "Event of a partitioned group published without a partition (its publisher has no PublisherConfig.Partitions for the subject): handled, ordered only among such events"
	case pr.g.cfg.Partitions.Of(key) != u:
		pr.misplaced.Add(1)
		what = "Event in another partition than its key's (a publisher with another partition Count?): handled, ordered only within its partition"
	default:
		return
	}
	if _, seen := pr.warned.LoadOrStore(u, struct{}{}); !seen {
		logs.Warn(pr.log, what, nil, watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq, "partition": unitName(u, pr.count), "header": headerOf(d, partition.Header)})
	}
}

func headerOf(d *transport.Delivery, name string) string {
	if vs := d.Header[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// stopIntake stops the beats and every unit's intake (the router's
// shutdown: intake first everywhere, then one close deadline).
func (pr *partitionedRun) stopIntake() {
	select {
	case <-pr.stopCh:
	default:
		close(pr.stopCh)
	}
	if pr.looping.Load() {
		<-pr.loopDone
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, gr := range pr.units {
		gr.run.StopIntake()
	}
}

// drain waits for the units' handlers until ctx's deadline, hands every
// unit over, waits for the handovers under way, and leaves the group.
func (pr *partitionedRun) drain(ctx context.Context) []error {
	errs := pr.stopUnits(ctx)
	pr.handing.Wait()
	lctx, cancel := context.WithTimeout(context.Background(), pr.beatEvery()*2)
	defer cancel()
	if err := pr.ms.Leave(lctx, pr.set, pr.r.member); err != nil {
		logs.Warn(pr.log, "Partitioned group: leave failed; the others take over when this process's entry expires", err, nil)
	}
	return errs
}

// stopUnits stops every running unit and hands it over.
func (pr *partitionedRun) stopUnits(ctx context.Context) []error {
	pr.mu.Lock()
	units := pr.units
	pr.units = make(map[int]*groupRun)
	pr.mu.Unlock()
	for _, gr := range units {
		gr.run.StopIntake()
	}
	var errs []error
	for u, gr := range units {
		for _, err := range gr.run.Drain(ctx) {
			errs = append(errs, fmt.Errorf("group %s partition %s: CloseTimeout %s: %w", pr.g.cfg.Durable, unitName(u, pr.count), pr.r.cfg.CloseTimeout, err))
		}
	}
	hctx, cancel := context.WithTimeout(context.Background(), pr.r.cfg.CloseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for u, gr := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gr.run.Handover(hctx); err != nil {
				logs.Warn(pr.log, "Partition handover: the next process receives after the pin times out", err, watermill.LogFields{"partition": unitName(u, pr.count)})
			}
		}()
	}
	wg.Wait()
	return errs
}

// health reports the group's units running here and its membership.
func (pr *partitionedRun) health() (PartitionedHealth, []*groupRun) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	ph := PartitionedHealth{
		Group: pr.g.cfg.Durable, Member: pr.r.member, Count: pr.count, Members: pr.members,
		LastBeat: pr.lastBeat, BeatErr: pr.beatErr,
		Misplaced: pr.misplaced.Load(), Unplaced: pr.unplaced.Load(),
	}
	var runs []*groupRun
	for u, gr := range pr.units {
		ph.Units = append(ph.Units, u)
		runs = append(runs, gr)
	}
	for u := range pr.leaving {
		ph.HandingOver = append(ph.HandingOver, u)
	}
	slices.Sort(ph.Units)
	slices.Sort(ph.HandingOver)
	if len(pr.startErr) > 0 {
		var errs []error
		for u, err := range pr.startErr {
			errs = append(errs, fmt.Errorf("partition %s: %w", unitName(u, pr.count), err))
		}
		ph.StartErr = errors.Join(errs...)
	}
	slices.SortFunc(runs, func(a, b *groupRun) int { return strings.Compare(a.spec.Durable, b.spec.Durable) })
	return ph, runs
}

// PartitionedHealth is a partitioned group in this process.
type PartitionedHealth struct {
	// Group is the group's durable name; Member this process's name in
	// its membership; Count its partitions.
	Group  string
	Member string
	Count  int
	// Members is how many processes run the group (at the last beat).
	Members int
	// Units are the units this process runs (partition numbers; Count is
	// the group's own durable, for events published without a
	// partition); HandingOver those it is handing over.
	Units       []int
	HandingOver []int
	// LastBeat is when this process last listed itself; BeatErr why the
	// last beat failed (nil when it did not); StartErr why units
	// assigned here could not start (retried at every beat).
	LastBeat time.Time
	BeatErr  error
	StartErr error
	// Misplaced counts events found in another partition than their
	// key's; Unplaced events published without a partition.
	Misplaced, Unplaced uint64
}
