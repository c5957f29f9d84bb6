package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/dlq"
	"github.com/jetevents/events/router"
)

// Defaults of Config.
const (
	defaultPath           = "/"
	DefaultRefresh        = 3 * time.Second
	defaultStalledAfter   = time.Minute
	defaultRequestTimeout = 10 * time.Second
	defaultMaxBatch       = 10_000
)

// Config configures the console. Zero fields take the documented defaults;
// New refuses what does not validate (ErrInvalidConfig).
type Config struct {
	// JetStream is what the console reads and writes through (required).
	// The console never closes its connection, and never renders its URL
	// with credentials in it, nor any credential.
	JetStream natsjs.JetStream

	// Path is where the host mounts the handler: mux.Handle(cfg.Path, h),
	// without http.StripPrefix (the console strips it and writes its links
	// under it). It starts and ends with "/". Default "/".
	Path string

	// DeadLetterStream is the dead-letter stream. Default "DLQ".
	DeadLetterStream string

	// AllowWrites turns on the console's writes: replay and purge of dead
	// letters, cancel of schedules, pause and resume of groups. Default
	// false: read-only; the pages show no write button and every write
	// endpoint answers 403. Every write needs the CSRF token of the page it
	// came from and is logged (Logger, info) with who made it (Identity).
	AllowWrites bool

	// Identity names the user behind a request, for the log of writes: the
	// host service's authenticated user (its auth middleware runs in front
	// of the console). Required when AllowWrites.
	Identity func(*http.Request) string

	// Logger receives one info record per write (who, what, the outcome)
	// and the errors of pages. Default slog.Default().
	Logger *slog.Logger

	// CSRFKey signs the CSRF tokens (at least 32 bytes). Default: a random
	// key made by New, so tokens end with the process; give the replicas of
	// a service behind one load balancer the same key.
	CSRFKey []byte

	// AllowedHosts, when set, refuses (403) a request whose Host header is
	// none of them (host or host:port): a console without auth on loopback
	// is otherwise readable by any web page through DNS rebinding. jetevents
	// ui sets it to the loopback names it listens on. Default: any host (the
	// host service's auth stands in front).
	AllowedHosts []string

	// Health is the local router's health (router.Router.Health): the
	// overview and the group page then show each of its groups' state
	// (active, stalled, ended), stalls and last progress. Default none: the
	// state is read from the durables' info only.
	Health func(context.Context) router.Health

	// Outbox are the service's outbox tables, by their backlog
	// (outbox.Outbox.Backlog): the overview shows each one's pending rows
	// and the oldest's age (the relay's lag). Default none.
	Outbox []OutboxBacklog

	// Partitions shows the partitions of a partitioned group and their
	// owners on its page (see PartitionSource). Default: read from
	// JetStream (the routers' membership bucket and the partitions'
	// durables).
	Partitions PartitionSource

	// Pauser pauses and resumes groups. Default: JetStream's consumer pause
	// (nats-server 2.11 or later) on the durable, through nats.go.
	Pauser Pauser

	// PageSize is the dead letters and schedules per page. Default 50
	// (dlq.DefaultPageSize), at most dlq.MaxPageSize.
	PageSize int

	// ScanLimit bounds the dead letters examined for one page of a search
	// (reason, type, organization, text: the server filters subjects
	// only); the page then offers to search on. Default
	// dlq.DefaultScanLimit (10,000).
	ScanLimit int

	// MaxBatch bounds the dead letters one replay or purge of a filtered
	// set handles in one request (the page says how many remain). Default
	// 10,000.
	MaxBatch int

	// Refresh is how often the pages' live numbers are refreshed (fetched
	// from api/live, without a reload). Default 3s.
	Refresh time.Duration

	// StalledAfter: a durable with messages waiting, nothing pulling and no
	// delivery or ack for this long shows as stalled. Default 1m.
	StalledAfter time.Duration

	// RequestTimeout bounds the server requests of one page or write.
	// Default 10s.
	RequestTimeout time.Duration
}

// OutboxBacklog reports an outbox table's pending rows and the age of the
// oldest: outbox.Outbox.Backlog has this signature.
type OutboxBacklog func(ctx context.Context) (table string, pending int64, oldest time.Duration, err error)

func (c *Config) setDefaults() {
	if c.Path == "" {
		c.Path = defaultPath
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = dlq.DefaultStream
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PageSize == 0 {
		c.PageSize = dlq.DefaultPageSize
	}
	if c.ScanLimit == 0 {
		c.ScanLimit = dlq.DefaultScanLimit
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = defaultMaxBatch
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.StalledAfter == 0 {
		c.StalledAfter = defaultStalledAfter
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Pauser == nil && c.JetStream != nil {
		c.Pauser = jetStreamPauser{c.JetStream}
	}
	if c.Partitions == nil && c.JetStream != nil {
		c.Partitions = jetStreamPartitions{c.JetStream}
	}
}

// Validate reports the first problem of the config, matching
// ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: console: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.JetStream == nil:
		return bad("JetStream is required")
	case !strings.HasPrefix(c.Path, "/") || !strings.HasSuffix(c.Path, "/"):
		return bad("Path %q must start and end with /", c.Path)
	case c.AllowWrites && c.Identity == nil:
		return bad("AllowWrites needs an Identity: every write is logged with who made it")
	case c.CSRFKey != nil && len(c.CSRFKey) < 32:
		return bad("CSRFKey has %d bytes, want at least 32", len(c.CSRFKey))
	case c.PageSize < 1 || c.PageSize > dlq.MaxPageSize:
		return bad("PageSize %d: want 1 to %d", c.PageSize, dlq.MaxPageSize)
	case c.ScanLimit < 1:
		return bad("ScanLimit %d is not positive", c.ScanLimit)
	case c.MaxBatch < 1:
		return bad("MaxBatch %d is not positive", c.MaxBatch)
	case c.Refresh < 500*time.Millisecond:
		return bad("Refresh %s: want at least 500ms", c.Refresh)
	case c.StalledAfter <= 0:
		return bad("StalledAfter %s is not positive", c.StalledAfter)
	case c.RequestTimeout <= 0:
		return bad("RequestTimeout %s is not positive", c.RequestTimeout)
	}
	for _, o := range c.Outbox {
		if o == nil {
			return bad("Outbox holds a nil backlog")
		}
	}
	return nil
}
