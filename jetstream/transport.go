package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// Transport defaults. Each is documented on the TransportConfig field it fills.
const (
	defaultHeartbeat     = 5 * time.Second
	defaultPullExpiry    = 30 * time.Second
	defaultAPITimeout    = 10 * time.Second
	defaultAPIPrefix     = "$JS.API"
	defaultRecoveryDelay = 250 * time.Millisecond
)

// TransportConfig configures a Transport. Zero fields take the defaults.
type TransportConfig struct {
	// Heartbeat is the idle heartbeat asked of the server for every pull
	// request: a consumer that receives neither a message nor a heartbeat
	// for two Heartbeats while it has pulls outstanding declares the pull
	// dead (a lost request, a leader change, a restarted server), checks its
	// durable (recreating it when it is gone) and pulls again. Default 5s.
	Heartbeat time.Duration
	// PullExpiry is how long one pull request waits at the server for
	// messages. Default 30s; must be at least 2 Heartbeats.
	PullExpiry time.Duration
	// APITimeout bounds each JetStream API call (consumer info, create,
	// update). Default 10s.
	APITimeout time.Duration
	// APIPrefix is the JetStream API subject prefix ("$JS.API", or
	// "$JS.<domain>.API" for a domain). Default "$JS.API".
	APIPrefix string
	// DeadLetterStream, when set, is the only stream a dead letter may land
	// in (Nats-Expected-Stream). Default "": whichever stream listens.
	DeadLetterStream string
	// ReleaseBucket is the KV bucket that counts the deliveries a router
	// released unhandled (events queued when a group stopped), so that they
	// are not read as handler attempts (see release.go). It is created on
	// the first release, replicated like the stream consumed. Default
	// "jetevents_releases".
	ReleaseBucket string
	// ReleaseTTL is how long a release is remembered; a message redelivered
	// later than that counts its releases as attempts. Default 7 days.
	ReleaseTTL time.Duration
	// MemberBucket is the KV bucket where the processes of partitioned
	// groups list themselves (see membership.go). Created on first use,
	// replicated like the stream consumed. Default "jetevents_members".
	MemberBucket string
	// MemberTTL is how long a process stays listed in MemberBucket after
	// its last beat (the bucket's MaxAge: every process of a group must use
	// the same). A process that dies drops out after it, and its
	// partitions are spread over the others. Default 5s; at least 1s.
	MemberTTL time.Duration
	// Logger receives stalls and recoveries (warn), durable changes (warn)
	// and failures (error). Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *TransportConfig) setDefaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = defaultHeartbeat
	}
	if c.PullExpiry == 0 {
		c.PullExpiry = max(defaultPullExpiry, 2*c.Heartbeat)
	}
	if c.APITimeout == 0 {
		c.APITimeout = defaultAPITimeout
	}
	if c.APIPrefix == "" {
		c.APIPrefix = defaultAPIPrefix
	}
	if c.ReleaseBucket == "" {
		c.ReleaseBucket = defaultReleaseBucket
	}
	if c.ReleaseTTL == 0 {
		c.ReleaseTTL = defaultReleaseTTL
	}
	if c.MemberBucket == "" {
		c.MemberBucket = defaultMemberBucket
	}
	if c.MemberTTL == 0 {
		c.MemberTTL = defaultMemberTTL
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match envelope.ErrInvalidConfig.
func (c TransportConfig) Validate() error {
	switch {
	case c.Heartbeat <= 0:
		return fmt.Errorf("%w: Heartbeat %s must be positive", envelope.ErrInvalidConfig, c.Heartbeat)
	case c.PullExpiry < 2*c.Heartbeat:
		return fmt.Errorf("%w: PullExpiry %s must be at least 2 Heartbeats (%s)", envelope.ErrInvalidConfig, c.PullExpiry, 2*c.Heartbeat)
	case c.APITimeout <= 0:
		return fmt.Errorf("%w: APITimeout %s must be positive", envelope.ErrInvalidConfig, c.APITimeout)
	case strings.ContainsAny(c.APIPrefix, " *>\t\r\n"):
		return fmt.Errorf("%w: APIPrefix %q", envelope.ErrInvalidConfig, c.APIPrefix)
	case c.DeadLetterStream != "" && ValidateName(c.DeadLetterStream) != nil:
		return fmt.Errorf("%w: DeadLetterStream: %w", envelope.ErrInvalidConfig, ValidateName(c.DeadLetterStream))
	case ValidateName(c.ReleaseBucket) != nil:
		return fmt.Errorf("%w: ReleaseBucket: %w", envelope.ErrInvalidConfig, ValidateName(c.ReleaseBucket))
	case c.ReleaseTTL < time.Second:
		return fmt.Errorf("%w: ReleaseTTL %s must be at least 1s", envelope.ErrInvalidConfig, c.ReleaseTTL)
	case ValidateName(c.MemberBucket) != nil:
		return fmt.Errorf("%w: MemberBucket: %w", envelope.ErrInvalidConfig, ValidateName(c.MemberBucket))
	case c.MemberTTL < time.Second:
		return fmt.Errorf("%w: MemberTTL %s must be at least 1s", envelope.ErrInvalidConfig, c.MemberTTL)
	}
	return nil
}

// Transport runs router groups on JetStream durable pull consumers. It is
// built on core NATS (pull requests on one inbox per consumer, acks as plain
// publishes) rather than nats.go's jetstream Consume/Fetch: those buffer
// messages the caller cannot reach (so cannot keep alive), Fetch starts a
// goroutine and a timer per call, and its Messages iterator stalls when a pull
// is lost. Here every delivered message reaches the sink at once, pulls are
// sized by the router's credit, and a lost pull is noticed by its missing
// heartbeats. Close-wise it never closes or drains the *nats.Conn.
type Transport struct {
	nc       *nats.Conn
	js       natsjs.JetStream
	cfg      TransportConfig
	releases releaseLedger
	members  members
}

var _ transport.Transport = (*Transport)(nil)

// NewTransport returns a Transport on nc, which the caller keeps owning.
func NewTransport(nc *nats.Conn, cfg TransportConfig) (*Transport, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := natsjs.NewWithAPIPrefix(nc, cfg.APIPrefix)
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", envelope.ErrInvalidConfig, err)
	}
	t := &Transport{nc: nc, js: js, cfg: cfg}
	t.releases.t = t
	t.members.t = t
	return t, nil
}

// MaxPayload is the connection's max payload.
func (t *Transport) MaxPayload() int { return int(t.nc.MaxPayload()) }

// PublishDeadLetter publishes msg with Nats-Msg-Id msg.ID and waits for the
// stream's ack (a duplicate is a success). Errors match
// transport.ErrDeadLetter, and transport.ErrNoStream when no stream listens on the
// dead-letter subject.
func (t *Transport) PublishDeadLetter(ctx context.Context, msg *transport.Message) error {
	opts := []natsjs.PublishOpt{natsjs.WithMsgID(msg.ID)}
	if t.cfg.DeadLetterStream != "" {
		opts = append(opts, natsjs.WithExpectStream(t.cfg.DeadLetterStream))
	}
	_, err := t.js.PublishMsg(ctx, &nats.Msg{Subject: msg.Subject, Header: nats.Header(msg.Header), Data: msg.Data}, opts...)
	if err == nil {
		return nil
	}
	e := &transport.Error{Op: "dead-letter", Subject: msg.Subject, Kinds: []error{transport.ErrDeadLetter}, Err: err}
	switch {
	case errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
		e.Kinds = append(e.Kinds, transport.ErrNoStream)
		e.Hint = "create the dead-letter stream (scripts/streams.yaml, stream DLQ on dlq.>)"
	case isPermission(err):
		e.Kinds = append(e.Kinds, transport.ErrPermission)
	}
	return e
}

// Consume binds the durable of spec and starts pulling for sink: see
// transport.Transport. A filter subject the stream does not store is refused
// first (envelope.ErrInvalidConfig, naming the filter and the stream's subjects),
// before any durable is touched. The durable is created when missing; when it exists
// with settings that differ from spec, it is updated to spec and every
// difference is logged at warn (the group's config owns its durable). Setup
// errors match transport.ErrSubscribe (and transport.ErrNoStream for a missing stream,
// transport.ErrPermission for a denied API call).
func (t *Transport) Consume(ctx context.Context, spec transport.ConsumerSpec, sink func(*transport.Delivery)) (transport.Consumer, error) {
	if err := ValidateName(spec.Stream); err != nil {
		return nil, fmt.Errorf("consume: %w: stream: %w", envelope.ErrInvalidConfig, err)
	}
	if err := ValidateName(spec.Durable); err != nil {
		return nil, fmt.Errorf("consume: %w: durable: %w", envelope.ErrInvalidConfig, err)
	}
	if len(spec.FilterSubjects) == 0 {
		return nil, fmt.Errorf("consume %s: %w: no filter subject", spec.Durable, envelope.ErrInvalidConfig)
	}
	if err := t.checkFilters(ctx, spec); err != nil {
		return nil, err
	}
	c := newPullConsumer(t, spec, sink)
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// desiredConsumer is the server config of a group's durable. MaxDeliver is
// unlimited on purpose: the router enforces the attempt limit itself (it
// dead-letters before the handler runs again), so the server must never give
// up on a message the router has not stored elsewhere.
func (t *Transport) desiredConsumer(spec transport.ConsumerSpec) natsjs.ConsumerConfig {
	cc := natsjs.ConsumerConfig{
		Durable:       spec.Durable,
		Description:   spec.Description,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: spec.MaxAckPending,
		MaxWaiting:    512,
	}
	switch spec.Start {
	case transport.StartNew:
		cc.DeliverPolicy = natsjs.DeliverNewPolicy
	case transport.StartAtSequence:
		cc.DeliverPolicy, cc.OptStartSeq = natsjs.DeliverByStartSequencePolicy, spec.StartSeq
	case transport.StartAtTime:
		st := spec.StartTime
		cc.DeliverPolicy, cc.OptStartTime = natsjs.DeliverByStartTimePolicy, &st
	}
	if len(spec.FilterSubjects) == 1 {
		cc.FilterSubject = spec.FilterSubjects[0]
	} else {
		cc.FilterSubjects = slices.Clone(spec.FilterSubjects)
	}
	t.pinned(&cc, spec)
	return cc
}

// consumerDiff lists the settings of have that differ from want, among those
// a group owns (the start position only matters at creation).
func consumerDiff(have, want natsjs.ConsumerConfig) []string {
	var d []string
	add := func(field string, h, w any) { d = append(d, fmt.Sprintf("%s %v -> %v", field, h, w)) }
	filters := func(c natsjs.ConsumerConfig) []string {
		if c.FilterSubject != "" {
			return []string{c.FilterSubject}
		}
		return c.FilterSubjects
	}
	if hf, wf := filters(have), filters(want); !slices.Equal(hf, wf) {
		add("filter_subjects", hf, wf)
	}
	if have.AckWait != want.AckWait {
		add("ack_wait", have.AckWait, want.AckWait)
	}
	if have.MaxDeliver != want.MaxDeliver {
		add("max_deliver", have.MaxDeliver, want.MaxDeliver)
	}
	if have.MaxAckPending != want.MaxAckPending {
		add("max_ack_pending", have.MaxAckPending, want.MaxAckPending)
	}
	if have.AckPolicy != want.AckPolicy {
		add("ack_policy", have.AckPolicy, want.AckPolicy)
	}
	if len(have.BackOff) > 0 {
		add("backoff", have.BackOff, "none (the router schedules redeliveries)")
	}
	if have.PriorityPolicy != want.PriorityPolicy || !slices.Equal(have.PriorityGroups, want.PriorityGroups) || have.PinnedTTL != want.PinnedTTL {
		add("priority", fmt.Sprintf("%v %v %s", have.PriorityPolicy, have.PriorityGroups, have.PinnedTTL), fmt.Sprintf("%v %v %s", want.PriorityPolicy, want.PriorityGroups, want.PinnedTTL))
	}
	if have.Description != want.Description {
		add("description", fmt.Sprintf("%q", have.Description), fmt.Sprintf("%q", want.Description))
	}
	return d
}

// isPermission reports whether err is a NATS permissions violation.
func isPermission(err error) bool {
	if IsPermissionError(err) {
		return true
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 403 {
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), "permissions violation")
}
