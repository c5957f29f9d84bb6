package eventstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgreSQL for tests. Why a real server: the outbox's and inbox's
// guarantees rest on PostgreSQL's own behaviour (advisory transaction locks,
// READ COMMITTED snapshots, LISTEN/NOTIFY delivered at commit, a crashed
// client's transaction rolled back); no mock has them. The Debian
// postgresql package puts its binaries in /usr/lib/postgresql/<major>/bin;
// NewPostgres finds them there (or through pg_config, or $PG_BIN), runs
// initdb in a fresh temporary directory and starts the server on a random
// 127.0.0.1 port, as a child of the test process that dies with it.
//
// initdb refuses to run as root, and these machines run tests as root: the
// cluster then belongs to the "postgres" user (the package creates it), and
// initdb and postgres run with its credentials.

// EnvPostgresURL points NewPostgres at an existing server instead of a
// throwaway cluster: a URL whose user may CREATE DATABASE (each test gets a
// database of its own, dropped when it ends).
const EnvPostgresURL = "PG_URL"

// EnvPostgresBin names the directory holding initdb and postgres, when they
// are neither in /usr/lib/postgresql/*/bin nor found by pg_config.
const EnvPostgresBin = "PG_BIN"

// ErrNoPostgres: no PostgreSQL server binaries were found (install the
// postgresql package: `apt-get install -y postgresql`), or a throwaway
// cluster could not be started. The message says which.
var ErrNoPostgres = errors.New("eventstest: no PostgreSQL")

// PostgresConfig configures NewPostgresWithConfig.
type PostgresConfig struct {
	// Fsync keeps PostgreSQL's fsync and synchronous commit, as in
	// production: every commit waits for its WAL to reach the disk.
	// Default false: fsync off, so that tests do not wait on the disk
	// (crash safety of the server itself is PostgreSQL's, not ours, to
	// test; a client killed mid-transaction is rolled back either way).
	// Benchmarks set it.
	Fsync bool
	// MaxConnections is the server's max_connections. Default 100.
	MaxConnections int
	// StartTimeout bounds initdb and the start. Default 1 minute.
	StartTimeout time.Duration
}

// Postgres is a PostgreSQL server for one test: a throwaway cluster, or
// the server at $PG_URL.
type Postgres struct {
	// DSN is the URL of a database of this test's own ("jetevents"), e.g.
	// postgres://postgres@127.0.0.1:PORT/jetevents?sslmode=disable.
	DSN string

	admin   *url.URL // the maintenance database, for CREATE/DROP DATABASE
	bin     string
	dataDir string // "" when on $PG_URL
	cmd     *exec.Cmd
	done    chan struct{}
	out     *tailBuffer
	spawn   *spawner

	mu  sync.Mutex
	dbs int
}

// NewPostgres starts a throwaway PostgreSQL cluster for t (fsync off) and
// returns it; Postgres.DSN is a fresh database in it. Everything is
// removed when the test ends (the server stopped as `pg_ctl stop -m
// immediate` does, its directory deleted), and the server also dies if the
// test process does. With $PG_URL set, the server there is used instead: a
// database is created for the test and dropped at its end.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	return NewPostgresWithConfig(t, PostgresConfig{})
}

// NewPostgresWithConfig is NewPostgres with a configuration.
func NewPostgresWithConfig(t testing.TB, cfg PostgresConfig) *Postgres {
	t.Helper()
	p, err := StartPostgres(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.Stop)
	p.DSN = p.NewDatabase(t)
	return p
}

// StartPostgres is NewPostgres for programs (benchmarks, examples) that
// have no testing.T: the caller stops it with Stop. Its DSN is empty:
// CreateDatabase makes one.
func StartPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 100
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = time.Minute
	}
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return existingPostgres(u)
	}
	return startPostgres(cfg)
}

// Stop stops a throwaway cluster and removes its directory (nothing for
// the server at $PG_URL: drop the databases created there first).
func (p *Postgres) Stop() { p.stop() }

// NewDatabase creates another empty database on the server, dropped when t
// ends, and returns its URL.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name, dsn, err := p.createDatabase()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := p.DropDatabase(name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return dsn
}

// CreateDatabase creates an empty database and returns its name (for
// DropDatabase) and URL.
func (p *Postgres) CreateDatabase() (name, dsn string, err error) { return p.createDatabase() }

// DropDatabase drops a database made by CreateDatabase, ending its sessions.
func (p *Postgres) DropDatabase(name string) error {
	if p.dataDir != "" && !p.running() {
		return nil // the cluster is gone with its databases
	}
	if err := p.psql("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
		return fmt.Errorf("eventstest: drop database %s: %w", name, err)
	}
	return nil
}

func (p *Postgres) createDatabase() (name, dsn string, err error) {
	p.mu.Lock()
	p.dbs++
	name = fmt.Sprintf("jetevents_%d_%d", os.Getpid(), p.dbs)
	if p.dataDir != "" && p.dbs == 1 {
		name = "jetevents"
	}
	p.mu.Unlock()
	if err := p.psql("CREATE DATABASE " + name); err != nil {
		return "", "", fmt.Errorf("eventstest: create database %s: %w", name, err)
	}
	u := *p.admin
	u.Path = "/" + name
	return name, u.String(), nil
}

// psql runs one SQL command on the maintenance database.
func (p *Postgres) psql(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", p.admin.String(), "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// tool is the path of a PostgreSQL program: from the server's bin
// directory, else from PATH (psql of the postgresql-client package).
func (p *Postgres) tool(name string) string {
	if p.bin != "" {
		if path := filepath.Join(p.bin, name); fileExists(path) {
			return path
		}
	}
	return name
}

func existingPostgres(raw string) (*Postgres, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%w: %s=%q is not a postgres:// URL", ErrNoPostgres, EnvPostgresURL, raw)
	}
	bin, _ := postgresBin() // psql may come from PATH instead
	return &Postgres{admin: u, bin: bin}, nil
}

// postgresBin finds the directory of initdb and postgres.
func postgresBin() (string, error) {
	if dir := os.Getenv(EnvPostgresBin); dir != "" {
		if !fileExists(filepath.Join(dir, "initdb")) {
			return "", fmt.Errorf("%w: %s=%s has no initdb", ErrNoPostgres, EnvPostgresBin, dir)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); fileExists(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
	// Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, newest first.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestMajor := "", -1
	for _, m := range matches {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && major > bestMajor {
			best, bestMajor = filepath.Dir(m), major
		}
	}
	if best != "" {
		return best, nil
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", fmt.Errorf("%w: no initdb in %s, /usr/lib/postgresql/*/bin or PATH: install the server (apt-get install -y postgresql), or set %s to a running server's URL",
		ErrNoPostgres, EnvPostgresBin, EnvPostgresURL)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// pgUser is the account the cluster runs as: the current user, or the
// "postgres" account when running as root (initdb refuses root).
type pgUser struct {
	name     string
	uid, gid uint32
	switchTo bool // run initdb and postgres with this account's credentials
}

func clusterUser() (pgUser, error) {
	if os.Geteuid() != 0 {
		cur, err := user.Current()
		if err != nil {
			return pgUser{}, fmt.Errorf("%w: current user: %w", ErrNoPostgres, err)
		}
		return pgUser{name: cur.Username}, nil
	}
	pu, err := user.Lookup("postgres")
	if err != nil {
		return pgUser{}, fmt.Errorf("%w: running as root, and initdb refuses root: no \"postgres\" account to run it as (the postgresql package creates one): %w", ErrNoPostgres, err)
	}
	uid, err1 := strconv.ParseUint(pu.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(pu.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return pgUser{}, fmt.Errorf("%w: account postgres: uid %q gid %q", ErrNoPostgres, pu.Uid, pu.Gid)
	}
	return pgUser{name: "postgres", uid: uint32(uid), gid: uint32(gid), switchTo: true}, nil
}

func startPostgres(cfg PostgresConfig) (p *Postgres, err error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	as, err := clusterUser()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir(): its parents are private to root, and the server may
	// run as another account. /tmp is open to every account.
	dir, err := os.MkdirTemp("", "jetevents-pg-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoPostgres, err)
	}
	p = &Postgres{bin: bin, dataDir: filepath.Join(dir, "data"), out: &tailBuffer{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			p.stop()
			_ = os.RemoveAll(dir)
			p = nil
		}
	}()
	if as.switchTo {
		if err := os.Chown(dir, int(as.uid), int(as.gid)); err != nil {
			return p, fmt.Errorf("%w: chown %s to postgres: %w", ErrNoPostgres, dir, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", p.dataDir, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = credentialAttr(as)
	if out, err := initdb.CombinedOutput(); err != nil {
		return p, fmt.Errorf("%w: initdb: %w: %s", ErrNoPostgres, err, bytes.TrimSpace(out))
	}
	// The port: a free one now; another process may take it before the
	// server binds it, so a start that fails on the port is tried again.
	for try := 0; ; try++ {
		port, err := freePort()
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrNoPostgres, err)
		}
		err = p.startServer(ctx, cfg, as, port)
		if err == nil {
			break
		}
		if try >= 2 || !strings.Contains(p.out.String(), "could not bind") {
			return p, err
		}
		p.out = &tailBuffer{}
		p.done = make(chan struct{})
	}
	return p, nil
}

// startServer starts postgres itself (not pg_ctl, which daemonizes it) as
// a child of this process, killed by the kernel if this process dies.
func (p *Postgres) startServer(ctx context.Context, cfg PostgresConfig, as pgUser, port int) error {
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	args := []string{"-D", p.dataDir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + filepath.Dir(p.dataDir),
		"-c", "max_connections=" + strconv.Itoa(cfg.MaxConnections),
		"-c", "fsync=" + onOff(cfg.Fsync),
		"-c", "synchronous_commit=" + onOff(cfg.Fsync),
		"-c", "full_page_writes=" + onOff(cfg.Fsync),
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning",
	}
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = credentialAttr(as)
	setDeathSignal(cmd.SysProcAttr)
	if p.spawn == nil {
		p.spawn = newSpawner()
	}
	if err := p.spawn.start(cmd); err != nil {
		return fmt.Errorf("%w: start postgres: %w", ErrNoPostgres, err)
	}
	p.cmd = cmd
	done := p.done
	go func() { // owned by p: ends when the server does
		_ = cmd.Wait()
		close(done)
	}()
	p.admin = &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path: "/postgres", RawQuery: "sslmode=disable"}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if conn, err := net.DialTimeout("tcp", p.admin.Host, time.Second); err == nil {
			_ = conn.Close()
			// Listening; accepting queries once recovery is done.
			if err := p.psql("SELECT 1"); err == nil {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%w: postgres exited at start: %s", ErrNoPostgres, strings.TrimSpace(p.out.String()))
		case <-ctx.Done():
			return fmt.Errorf("%w: postgres not ready on %s: %w: %s", ErrNoPostgres, p.admin.Host, ctx.Err(), strings.TrimSpace(p.out.String()))
		case <-tick.C:
		}
	}
}

func (p *Postgres) running() bool {
	if p.cmd == nil {
		return false
	}
	return !isClosed(p.done)
}

// stop shuts the server down as `pg_ctl stop -m immediate` does (SIGQUIT:
// no checkpoint, the backends end at once), SIGKILL if it lingers, then
// removes its directory.
func (p *Postgres) stop() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.spawn != nil {
		p.spawn.close()
		p.spawn = nil
	}
	if p.dataDir != "" {
		_ = os.RemoveAll(filepath.Dir(p.dataDir))
	}
}

// Output is the server's log so far (warnings and errors), for failure
// messages.
func (p *Postgres) Output() string {
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
