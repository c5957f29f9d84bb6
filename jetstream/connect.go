package jetstream

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/logs"
	"github.com/nats-io/nats.go"
)

// Connection defaults, chosen for long-running services (see each option).
const (
	// defaultReconnectInitial is the first reconnect delay; it doubles after
	// every round over the server list, up to defaultReconnectMax.
	defaultReconnectInitial = 250 * time.Millisecond
	// defaultReconnectMax caps the reconnect delay.
	defaultReconnectMax = 10 * time.Second
	// defaultReconnectBufSize is the data buffered while reconnecting (8 MiB,
	// nats.go's own default, made explicit).
	defaultReconnectBufSize = 8 << 20
	// defaultConnectTimeout bounds the dial and handshake of one attempt.
	defaultConnectTimeout = 5 * time.Second
	// defaultPingInterval and defaultMaxPingsOut detect a dead TCP connection
	// in about a minute instead of nats.go's four.
	defaultPingInterval = 20 * time.Second
	defaultMaxPingsOut  = 3
)

// ConnectOption configures Connect. Options validate themselves: a bad value
// makes Connect fail with envelope.ErrInvalidConfig before anything is dialled.
type ConnectOption func(*connectConfig) error

type connectConfig struct {
	name             string
	logger           watermill.LoggerAdapter
	reconnectInitial time.Duration
	reconnectMax     time.Duration
	reconnectBufSize int
	connectTimeout   time.Duration
	pingInterval     time.Duration
	maxPingsOut      int
	retryOnFailed    bool

	authMethod string // which of creds / nkey / user / token was chosen
	tlsMethod  string // "files" (WithTLS) or "config" (WithTLSConfig)
	auth       []nats.Option
	tls        []nats.Option
	extra      []nats.Option
}

func (c *connectConfig) setDefaults() {
	if c.name == "" {
		c.name = defaultClientName()
	}
	if c.logger == nil {
		c.logger = logs.NewSlog(nil)
	}
	if c.reconnectInitial == 0 {
		c.reconnectInitial = defaultReconnectInitial
	}
	if c.reconnectMax == 0 {
		c.reconnectMax = defaultReconnectMax
	}
	if c.reconnectBufSize == 0 {
		c.reconnectBufSize = defaultReconnectBufSize
	}
	if c.connectTimeout == 0 {
		c.connectTimeout = defaultConnectTimeout
	}
	if c.pingInterval == 0 {
		c.pingInterval = defaultPingInterval
	}
	if c.maxPingsOut == 0 {
		c.maxPingsOut = defaultMaxPingsOut
	}
}

func (c *connectConfig) validate() error {
	if c.reconnectInitial < 0 || c.reconnectMax < c.reconnectInitial {
		return fmt.Errorf("%w: reconnect backoff initial %s, max %s", envelope.ErrInvalidConfig, c.reconnectInitial, c.reconnectMax)
	}
	if c.connectTimeout < 0 || c.pingInterval < 0 || c.maxPingsOut < 0 {
		return fmt.Errorf("%w: negative connect timeout, ping interval or max pings out", envelope.ErrInvalidConfig)
	}
	return nil
}

func defaultClientName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return "jetevents"
}

// WithName sets the client name shown by the server (`nats server report
// connections`). Default: the program's base name.
func WithName(name string) ConnectOption {
	return func(c *connectConfig) error {
		c.name = name
		return nil
	}
}

// WithLogger sets where connection events are logged, each naming the client
// and the server: connected and reconnected at info; disconnected (the client
// reconnects) and lame duck mode at warn (at info when the adapter has no
// Warn method); a normal Close (its disconnect and close) at debug; a close
// on an error and asynchronous errors (slow consumer, permission violation)
// at error. Default: slog.Default() through watermill's slog adapter, with a
// warn level.
func WithLogger(l watermill.LoggerAdapter) ConnectOption {
	return func(c *connectConfig) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", envelope.ErrInvalidConfig)
		}
		c.logger = l
		return nil
	}
}

// WithReconnectBackoff sets the reconnect schedule. The client reconnects
// forever; after each failed round over the server list it waits
// initial*2^(round-1), capped at max, with "equal jitter" (a random half of
// the delay) so that a fleet of clients does not reconnect in lockstep.
// Defaults defaultReconnectInitial and defaultReconnectMax.
func WithReconnectBackoff(initial, max time.Duration) ConnectOption {
	return func(c *connectConfig) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("%w: reconnect backoff initial %s, max %s", envelope.ErrInvalidConfig, initial, max)
		}
		c.reconnectInitial, c.reconnectMax = initial, max
		return nil
	}
}

// WithReconnectBufferSize sets how many bytes of outgoing data are buffered
// while reconnecting; they are sent once reconnected. A negative size turns
// buffering off: publishing while disconnected then fails at once. Default
// defaultReconnectBufSize.
func WithReconnectBufferSize(bytes int) ConnectOption {
	return func(c *connectConfig) error {
		if bytes == 0 {
			return fmt.Errorf("%w: reconnect buffer size 0 (use a negative size to disable buffering)", envelope.ErrInvalidConfig)
		}
		c.reconnectBufSize = bytes
		return nil
	}
}

// WithConnectTimeout bounds each dial and handshake. Default defaultConnectTimeout.
func WithConnectTimeout(d time.Duration) ConnectOption {
	return func(c *connectConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: connect timeout %s", envelope.ErrInvalidConfig, d)
		}
		c.connectTimeout = d
		return nil
	}
}

// WithPingInterval sets the keep-alive: a connection that leaves maxOut pings
// unanswered is considered dead and reconnects. Defaults defaultPingInterval
// and defaultMaxPingsOut.
func WithPingInterval(interval time.Duration, maxOut int) ConnectOption {
	return func(c *connectConfig) error {
		if interval <= 0 || maxOut <= 0 {
			return fmt.Errorf("%w: ping interval %s, max pings out %d", envelope.ErrInvalidConfig, interval, maxOut)
		}
		c.pingInterval, c.maxPingsOut = interval, maxOut
		return nil
	}
}

// WithRetryOnFailedConnect makes Connect return a connection even when no
// server is reachable yet; it keeps trying in the background (and buffers
// publishes meanwhile). Default off: a service fails fast at start-up when the
// URL or the credentials are wrong.
func WithRetryOnFailedConnect() ConnectOption {
	return func(c *connectConfig) error {
		c.retryOnFailed = true
		return nil
	}
}

// setAuth records one authentication method; two are a configuration error,
// because the server would see only one of them and which one is not obvious.
func (c *connectConfig) setAuth(method string, opts ...nats.Option) error {
	if c.authMethod != "" && c.authMethod != method {
		return fmt.Errorf("%w: authentication set twice (%s and %s)", envelope.ErrInvalidConfig, c.authMethod, method)
	}
	c.authMethod = method
	c.auth = opts
	return nil
}

// setTLS refuses WithTLS together with WithTLSConfig: one would silently
// override parts of the other.
func (c *connectConfig) setTLS(method string) error {
	if c.tlsMethod != "" {
		return fmt.Errorf("%w: TLS set twice (WithTLS and WithTLSConfig, or one of them twice)", envelope.ErrInvalidConfig)
	}
	c.tlsMethod = method
	return nil
}

func fileMustExist(kind, path string) error {
	if path == "" {
		return fmt.Errorf("%w: empty %s path", envelope.ErrInvalidConfig, kind)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: %s: %w", envelope.ErrInvalidConfig, kind, err)
	}
	return nil
}

// WithCredsFile authenticates with a NATS credentials file (user JWT + NKey
// seed, as written by `nsc`). The file is read at every (re)connect, so a
// rotated file is picked up.
func WithCredsFile(path string) ConnectOption {
	return func(c *connectConfig) error {
		if err := fileMustExist("creds file", path); err != nil {
			return err
		}
		return c.setAuth("creds file", nats.UserCredentials(path))
	}
}

// WithNKeySeedFile authenticates with an NKey user whose seed ("SU...") is in
// path. The seed is read now; a bad file fails here, not at connect time.
func WithNKeySeedFile(path string) ConnectOption {
	return func(c *connectConfig) error {
		if err := fileMustExist("nkey seed file", path); err != nil {
			return err
		}
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return fmt.Errorf("%w: nkey seed file: %w", envelope.ErrInvalidConfig, err)
		}
		return c.setAuth("nkey", opt)
	}
}

// WithUserPassword authenticates with a user name and password.
func WithUserPassword(user, password string) ConnectOption {
	return func(c *connectConfig) error {
		if user == "" {
			return fmt.Errorf("%w: empty user name", envelope.ErrInvalidConfig)
		}
		return c.setAuth("user/password", nats.UserInfo(user, password))
	}
}

// WithToken authenticates with a token.
func WithToken(token string) ConnectOption {
	return func(c *connectConfig) error {
		if token == "" {
			return fmt.Errorf("%w: empty token", envelope.ErrInvalidConfig)
		}
		return c.setAuth("token", nats.Token(token))
	}
}

// WithTLS turns TLS on. caFile (PEM) verifies the server when the server's
// certificate is not signed by a system root; certFile and keyFile (PEM)
// present a client certificate to servers that verify clients. Each part is
// optional (pass "" to skip it) but the certificate and key go together.
// Files are read now, so a missing or unparsable file fails here.
func WithTLS(caFile, certFile, keyFile string) ConnectOption {
	return func(c *connectConfig) error {
		if (certFile == "") != (keyFile == "") {
			return fmt.Errorf("%w: TLS client certificate and key must be given together", envelope.ErrInvalidConfig)
		}
		if err := c.setTLS("files"); err != nil {
			return err
		}
		opts := []nats.Option{nats.Secure()}
		if caFile != "" {
			if err := fileMustExist("TLS CA file", caFile); err != nil {
				return err
			}
			opts = append(opts, nats.RootCAs(caFile))
		}
		if certFile != "" {
			if err := fileMustExist("TLS certificate file", certFile); err != nil {
				return err
			}
			if err := fileMustExist("TLS key file", keyFile); err != nil {
				return err
			}
			opts = append(opts, nats.ClientCert(certFile, keyFile))
		}
		c.tls = append(c.tls, opts...)
		return nil
	}
}

// WithTLSConfig turns TLS on with a ready tls.Config (certificates from a
// secret store, custom verification). Combining it with WithTLS is an error.
func WithTLSConfig(cfg *tls.Config) ConnectOption {
	return func(c *connectConfig) error {
		if cfg == nil {
			return fmt.Errorf("%w: nil tls.Config", envelope.ErrInvalidConfig)
		}
		if err := c.setTLS("config"); err != nil {
			return err
		}
		c.tls = append(c.tls, nats.Secure(cfg))
		return nil
	}
}

// WithNATSOptions appends raw nats.go options, applied after everything else
// (so they win). For what this package does not wrap.
func WithNATSOptions(opts ...nats.Option) ConnectOption {
	return func(c *connectConfig) error {
		c.extra = append(c.extra, opts...)
		return nil
	}
}

// ConnectOptions returns the nats.Options that Connect(url, opts...) dials
// with: nats.go's defaults, then this package's production defaults, then the
// options. It lets a caller inspect or adjust them before calling Connect on
// the result. url may list several servers separated by commas; empty means
// nats.DefaultURL.
func ConnectOptions(url string, opts ...ConnectOption) (nats.Options, error) {
	var cfg connectConfig
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nats.Options{}, fmt.Errorf("jetstream connect: %w", err)
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nats.Options{}, fmt.Errorf("jetstream connect: %w", err)
	}

	no := nats.GetDefaultOptions()
	no.Servers = splitURLs(url)
	log := cfg.logger
	// The server of each connection, remembered on connect and reconnect:
	// once disconnected, nats.go no longer says which server it was.
	var servers sync.Map // *nats.Conn -> watermill.LogFields
	remember := func(nc *nats.Conn) watermill.LogFields {
		url := nc.ConnectedUrlRedacted()
		if url == "" {
			// The connect callback runs asynchronously: the connection may
			// already be gone (a server stopped right after the connect);
			// name the configured servers rather than none.
			url = redactURLs(no.Servers)
		}
		f := watermill.LogFields{"name": cfg.name, "server": url, "server_name": nc.ConnectedServerName()}
		servers.Store(nc, f)
		return f
	}
	lastServer := func(nc *nats.Conn) watermill.LogFields {
		f := watermill.LogFields{"name": cfg.name, "server": "unknown"}
		if v, ok := servers.Load(nc); ok {
			f = v.(watermill.LogFields).Copy()
		}
		return f
	}
	base := []nats.Option{
		nats.Name(cfg.name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay(cfg.reconnectInitial, cfg.reconnectMax)),
		nats.ReconnectBufSize(cfg.reconnectBufSize),
		nats.Timeout(cfg.connectTimeout),
		nats.PingInterval(cfg.pingInterval),
		nats.MaxPingsOutstanding(cfg.maxPingsOut),
		nats.RetryOnFailedConnect(cfg.retryOnFailed),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", remember(nc))
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			f := lastServer(nc)
			switch {
			case err != nil:
				// Transient: the client reconnects (buffering publishes).
				warn(log, "nats disconnected", err, f)
			case nc.IsClosed():
				// The program closed the connection: nothing to act on.
				log.Debug("nats disconnected", f)
			default:
				log.Info("nats disconnected", f)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			f := remember(nc)
			f = f.Add(watermill.LogFields{"reconnects": nc.Reconnects})
			log.Info("nats reconnected", f)
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			log.Debug("nats reconnect attempt failed", watermill.LogFields{"name": cfg.name, "error": err})
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			f := lastServer(nc)
			servers.Delete(nc)
			if err := nc.LastError(); err != nil {
				log.Error("nats connection closed", err, f)
				return
			}
			log.Debug("nats connection closed", f)
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			warn(log, "nats server entering lame duck mode; will reconnect elsewhere", nil, lastServer(nc))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			f := watermill.LogFields{"name": cfg.name}
			if sub != nil {
				f["subject"] = sub.Subject
			}
			log.Error("nats asynchronous error", err, f)
		}),
	}
	all := make([]nats.Option, 0, len(base)+len(cfg.auth)+len(cfg.tls)+len(cfg.extra))
	all = append(all, base...)
	all = append(all, cfg.auth...)
	all = append(all, cfg.tls...)
	all = append(all, cfg.extra...)
	for _, o := range all {
		if err := o(&no); err != nil {
			return nats.Options{}, fmt.Errorf("jetstream connect: %w: %w", envelope.ErrInvalidConfig, err)
		}
	}
	return no, nil
}

// Connect connects to NATS with production defaults: a client name,
// reconnecting forever with exponential backoff and jitter, a reconnect
// buffer, a one-minute dead-connection check, and disconnect / reconnect /
// close / error events logged. Auth and TLS come from the options. The caller
// owns the connection: close it (or Drain it) on shutdown; nothing in this
// library closes a connection it did not create.
func Connect(url string, opts ...ConnectOption) (*nats.Conn, error) {
	no, err := ConnectOptions(url, opts...)
	if err != nil {
		return nil, err
	}
	nc, err := no.Connect()
	if err != nil {
		return nil, fmt.Errorf("jetstream connect %s: %w", redactURLs(no.Servers), err)
	}
	return nc, nil
}

// warn logs at warn level when the adapter has one, else at info.
func warn(log watermill.LoggerAdapter, msg string, err error, fields watermill.LogFields) {
	logs.Warn(log, msg, err, fields)
}

func splitURLs(url string) []string {
	var out []string
	for _, u := range strings.Split(url, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = []string{nats.DefaultURL}
	}
	return out
}

// redactURLs hides passwords and tokens embedded in server URLs so that an
// error message can be logged safely.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "[REDACTED]" + u[at:]
			}
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

// reconnectDelay returns nats.go's reconnect delay callback: initial doubling per
// failed round over the server list, capped at max, then "equal jitter" (half
// fixed, half random) so that clients of a restarted server spread out.
func reconnectDelay(initial, max time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := max
		if attempts < 1 {
			attempts = 1
		}
		if attempts <= 32 {
			if v := initial << (attempts - 1); v > 0 && v < max {
				d = v
			}
		}
		half := d / 2
		if half <= 0 {
			return d
		}
		return half + rand.N(half)
	}
}
