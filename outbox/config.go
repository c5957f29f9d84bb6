package outbox

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/sqldb"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Dialect is the SQL dialect of the service's database (the same type as
// inbox.Dialect).
type Dialect = sqldb.Dialect

// The dialects. The zero value detects the dialect from the *sql.DB's
// driver (pgx's stdlib or lib/pq: PostgreSQL; modernc.org/sqlite or
// mattn/go-sqlite3: SQLite).
const (
	Detect     = sqldb.Detect
	PostgreSQL = sqldb.PostgreSQL
	SQLite     = sqldb.SQLite
)

// Defaults of Config and RelayConfig.
const (
	DefaultTable           = "jetevents_outbox"
	DefaultBatchSize       = 256
	defaultConcurrency     = 16
	defaultPollMin         = 10 * time.Millisecond
	defaultPollMax         = 500 * time.Millisecond
	defaultPublishTimeout  = 5 * time.Second
	defaultLeaseTTL        = 10 * time.Second
	defaultDuplicateWindow = 2 * time.Minute // JetStream's default, and StreamSpec's
)

// defaultBackoff is the relay's retry schedule for a subject whose publish
// failed and for a batch the database refused: 100 ms doubling to 10 s,
// ±20 %.
var defaultBackoff = transport.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}

// Config configures an Outbox. Zero fields take the documented defaults.
type Config struct {
	// Dialect of the database. Default Detect (from the driver).
	Dialect Dialect

	// Table is the outbox table, optionally schema-qualified
	// ("events.outbox"). Default "jetevents_outbox". Its index and the
	// PostgreSQL notification channel are named after it.
	Table string

	// Marshaler validates and encodes events at Publish, so that an event
	// the relay could not send is refused inside the transaction, not
	// discovered later. Use the one your jetstream.Publisher uses (its
	// MaxSize). Default marshaler.Default().
	Marshaler *marshaler.Marshaler

	// DisableNotify stops Publish from sending a PostgreSQL NOTIFY with each
	// transaction (delivered at commit; it wakes the relays at once). NOTIFY
	// serialises the commits of notifying transactions database-wide; turn
	// it off if that shows, and the relays poll (RelayConfig.PollMax).
	// Default false. Ignored on SQLite.
	DisableNotify bool
}

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.Marshaler == nil {
		c.Marshaler = marshaler.Default()
	}
}

// Validate reports a configuration that cannot work; errors match
// envelope.ErrInvalidConfig. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	switch c.Dialect {
	case Detect, PostgreSQL, SQLite:
	default:
		return fmt.Errorf("%w: dialect %q (PostgreSQL or SQLite)", envelope.ErrInvalidConfig, string(c.Dialect))
	}
	if c.Table != "" {
		if err := sqldb.ValidTable(c.Table); err != nil {
			return fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
		}
	}
	return nil
}

// RelayConfig configures a Relay. Zero fields take the documented defaults.
type RelayConfig struct {
	// Name identifies the relay in logs and, on SQLite, as the lease's
	// holder. Default "<host>-<pid>-<random>".
	Name string

	// BatchSize is the most rows one batch reads, publishes and deletes.
	// Default 256.
	BatchSize int

	// Concurrency is how many subjects of a batch are published at once.
	// Within a subject, rows are published one after the other, each once
	// the previous one is stored, so that the stream keeps their order
	// whatever fails (see the package doc). Default 16.
	Concurrency int

	// PublishTimeout bounds one publish (the wait for the stream's ack).
	// Default 5s.
	PublishTimeout time.Duration

	// PollMin and PollMax bound the wait between two looks at the table
	// when the last one found nothing: it starts at PollMin and doubles up
	// to PollMax. A relay woken by PostgreSQL's NOTIFY (pgx's stdlib
	// driver) looks at once after each commit that wrote rows and polls at
	// PollMax only as a safety net. Defaults 10ms and 500ms.
	PollMin, PollMax time.Duration

	// Backoff is the retry schedule of a subject whose publish failed (its
	// later rows wait) and of a batch the database refused. Default
	// defaultBackoff: 100ms doubling to 10s, ±20%.
	Backoff transport.Backoff

	// LeaseTTL is how long a SQLite relay's lease lasts without renewal
	// (it is renewed by every batch): after the holder dies, another
	// relay takes over within LeaseTTL + PollMax. A relay publishes only
	// while its lease has at least PublishTimeout left. Default 10s.
	// Ignored on PostgreSQL, where relays hold per-subject locks that the
	// server frees the moment a relay's connection ends.
	LeaseTTL time.Duration

	// DuplicateWindow is the duplicates window of the streams the relay
	// publishes to (StreamSpec.Duplicates; JetStream's default 2 min). A
	// row published and not yet deleted when its relay died is published
	// again by the next relay: stored once if that happens inside the
	// window. Validate refuses a LeaseTTL + PublishTimeout that does not
	// fit in half of it. Default 2 min.
	DuplicateWindow time.Duration

	// Logger receives the relay's logs: a failing subject or batch at warn
	// (at error once its retry delay reaches Backoff.Max), takeover and
	// listening changes at info. Default middleware.NewSlogLogger(nil).
	Logger watermill.LoggerAdapter

	// OnRelayed, when set, is called for every row the relay published:
	// its subject, its lag (from Publish to the stream's ack) and the
	// publish error (nil: stored). metrics.Metrics.OutboxRelayed has this
	// signature. It runs on the publishing goroutine: keep it fast.
	OnRelayed func(table, subject string, lag time.Duration, err error)
}

func (c *RelayConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.PollMin == 0 {
		c.PollMin = defaultPollMin
	}
	if c.PollMax == 0 {
		c.PollMax = max(defaultPollMax, c.PollMin)
	}
	if b := c.Backoff; b.Initial == 0 && b.Max == 0 && b.Multiplier == 0 && b.Jitter == 0 && b.Rand == nil {
		c.Backoff = defaultBackoff
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = defaultDuplicateWindow
	}
	if c.Logger == nil {
		c.Logger = middleware.NewSlogLogger(nil)
	}
}

// Validate reports a configuration that cannot work; errors match
// envelope.ErrInvalidConfig. Zero fields are valid: they mean the defaults.
func (c RelayConfig) Validate() error {
	d := c
	d.setDefaults()
	switch {
	case d.BatchSize < 1 || d.BatchSize > 10000:
		return fmt.Errorf("%w: BatchSize %d (1 to 10000)", envelope.ErrInvalidConfig, c.BatchSize)
	case d.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency %d must be >= 1", envelope.ErrInvalidConfig, c.Concurrency)
	case d.PublishTimeout < 0 || d.PollMin < 0 || d.LeaseTTL < 0 || d.DuplicateWindow < 0:
		return fmt.Errorf("%w: negative duration", envelope.ErrInvalidConfig)
	case d.PollMax < d.PollMin:
		return fmt.Errorf("%w: PollMax %s below PollMin %s", envelope.ErrInvalidConfig, d.PollMax, d.PollMin)
	case d.LeaseTTL < 2*d.PublishTimeout:
		return fmt.Errorf("%w: LeaseTTL %s must be at least twice PublishTimeout %s (a relay publishes only while its lease outlasts a publish)",
			envelope.ErrInvalidConfig, d.LeaseTTL, d.PublishTimeout)
	case d.LeaseTTL+d.PublishTimeout > d.DuplicateWindow/2:
		return fmt.Errorf("%w: LeaseTTL %s + PublishTimeout %s must fit in half the streams' duplicates window %s, so that a row published again after a relay crash is still de-duplicated",
			envelope.ErrInvalidConfig, d.LeaseTTL, d.PublishTimeout, d.DuplicateWindow)
	}
	if err := d.Backoff.Validate(); err != nil {
		return fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
	}
	return nil
}
