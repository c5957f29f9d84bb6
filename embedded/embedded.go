// Package embedded runs a NATS server with JetStream inside the current
// process: the server of the test kit (eventstest), of the examples and of
// `make demo` when no NATS_URL is given. Production code never needs it; it is
// a package of its own so that neither the root package nor the transport
// import nats-server.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an embedded server. The zero value starts a JetStream
// server on a random 127.0.0.1 port with a fresh temporary store.
type Config struct {
	// Host to listen on. Default "127.0.0.1" (loopback only).
	Host string
	// Port to listen on. Default 0: a random free port (-1 in nats-server terms).
	Port int
	// StoreDir is the JetStream store. Default: a new temporary directory,
	// removed by Shutdown.
	StoreDir string
	// ServerName. Default "jetevents-embedded".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept connections. Default 10s.
	ReadyTimeout time.Duration
	// Logs turns the server's own log on (stderr). Default off.
	Logs bool

	// ClusterName makes the server a member of the JetStream cluster of that
	// name (RAFT-replicated streams, meta leader election). Every member needs
	// the same ClusterName and its own ServerName. Start returns only once
	// JetStream runs, which in a cluster needs a quorum of members: start
	// the members concurrently. Default "": a standalone server, and
	// ClusterPort and Routes are ignored.
	ClusterName string
	// ClusterPort is where the other members' routes connect, on Host.
	// Default 0: a random free port, kept across Restart.
	ClusterPort int
	// Routes are the other members' route URLs ("nats-route://127.0.0.1:6222").
	// The server retries them until they answer, so members may start in
	// any order. Listing the server's own URL is harmless. Default none.
	Routes []string
	// MonitorPort serves nats-server's HTTP monitoring (/healthz, /jsz,
	// /varz) on Host. Default 0: off; -1: a random free port, kept across
	// Restart.
	MonitorPort int
	// SyncAlways makes JetStream fsync every write before it acks it
	// (nats-server's `sync_interval: always`): an acked event survives a
	// crash of the machine, at a cost in publish latency. Default false:
	// nats-server's lazy fsync (every 2 minutes), where a crashed server may
	// lose recent acked writes that its peers (if any) still hold.
	SyncAlways bool
	// NoJetStream starts a core NATS server without JetStream, to see what
	// clients do when it is missing. Default false: JetStream on.
	NoJetStream bool
	// MaxPayload is the largest message (headers and data) the server
	// accepts, nats-server's max_payload; clients read it at connect
	// (nats.Conn.MaxPayload). Default 0: nats-server's 1 MiB.
	MaxPayload int32
}

// Server is a running embedded server.
type Server struct {
	srv      *server.Server
	cfg      Config
	ownStore bool
}

// ErrNotReady is returned when the server does not accept connections in time.
var ErrNotReady = errors.New("embedded nats-server not ready")

// Start starts a server as configured and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg}
	if s.cfg.Host == "" {
		s.cfg.Host = "127.0.0.1"
	}
	if s.cfg.Port == 0 {
		s.cfg.Port = server.RANDOM_PORT
	}
	if s.cfg.ServerName == "" {
		s.cfg.ServerName = "jetevents-embedded"
	}
	if s.cfg.ReadyTimeout == 0 {
		s.cfg.ReadyTimeout = 10 * time.Second
	}
	for _, r := range s.cfg.Routes {
		if _, err := url.Parse(r); err != nil || !strings.Contains(r, "://") {
			return nil, fmt.Errorf("embedded: %w: route %q is not a URL (nats-route://host:port)", envelope.ErrInvalidConfig, r)
		}
	}
	if s.cfg.StoreDir == "" {
		dir, err := os.MkdirTemp("", "jetevents-js-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: store dir: %w", err)
		}
		s.cfg.StoreDir, s.ownStore = dir, true
	}
	if err := s.start(); err != nil {
		s.removeStore()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	opts := &server.Options{
		ServerName: s.cfg.ServerName,
		Host:       s.cfg.Host,
		Port:       s.cfg.Port,
		JetStream:  !s.cfg.NoJetStream,
		StoreDir:   s.cfg.StoreDir,
		NoSigs:     true,
		NoLog:      !s.cfg.Logs,
		SyncAlways: s.cfg.SyncAlways,
		MaxPayload: s.cfg.MaxPayload,
	}
	if s.cfg.MonitorPort != 0 {
		opts.HTTPHost, opts.HTTPPort = s.cfg.Host, s.cfg.MonitorPort
	}
	if s.cfg.ClusterName != "" {
		opts.Cluster = server.ClusterOpts{Name: s.cfg.ClusterName, Host: s.cfg.Host, Port: s.cfg.ClusterPort}
		if opts.Cluster.Port == 0 {
			opts.Cluster.Port = server.RANDOM_PORT
		}
		for _, r := range s.cfg.Routes {
			u, _ := url.Parse(r) // checked by Start
			opts.Routes = append(opts.Routes, u)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	if s.cfg.Logs {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(s.cfg.ReadyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("%w after %s", ErrNotReady, s.cfg.ReadyTimeout)
	}
	s.srv = srv
	// Keep the ports a restart must reuse, so that clients and the other
	// members reconnect to them.
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.cfg.Port = addr.Port
	}
	if addr := srv.ClusterAddr(); addr != nil && s.cfg.ClusterName != "" {
		s.cfg.ClusterPort = addr.Port
	}
	if addr := srv.MonitorAddr(); addr != nil && s.cfg.MonitorPort != 0 {
		s.cfg.MonitorPort = addr.Port
	}
	return nil
}

// URL is the client URL (nats://127.0.0.1:PORT).
func (s *Server) URL() string { return s.srv.ClientURL() }

// ClusterURL is the route URL the other cluster members connect to
// (nats-route://127.0.0.1:PORT), or "" for a standalone server.
func (s *Server) ClusterURL() string {
	if s.cfg.ClusterName == "" {
		return ""
	}
	return fmt.Sprintf("nats-route://%s", net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.ClusterPort)))
}

// MonitorURL is the base URL of the HTTP monitoring endpoints
// (http://127.0.0.1:PORT), or "" when MonitorPort is off.
func (s *Server) MonitorURL() string {
	if s.cfg.MonitorPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.MonitorPort)))
}

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// NATS returns the underlying nats-server, for tests that need its internals.
func (s *Server) NATS() *server.Server { return s.srv }

// Stop shuts the server down but keeps its store, so that Restart brings the
// same streams and messages back on the same port.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart starts a stopped server again on the same port and store.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Shutdown stops the server and removes the store if Start created it.
func (s *Server) Shutdown() {
	s.Stop()
	s.removeStore()
}

func (s *Server) removeStore() {
	if s.ownStore {
		_ = os.RemoveAll(s.cfg.StoreDir)
	}
}
