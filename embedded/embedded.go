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
	"os"
	"time"

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
		JetStream:  true,
		StoreDir:   s.cfg.StoreDir,
		NoSigs:     true,
		NoLog:      !s.cfg.Logs,
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
	// Keep the port a restart must reuse, so that clients reconnect to it.
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.cfg.Port = addr.Port
	}
	return nil
}

// URL is the client URL (nats://127.0.0.1:PORT).
func (s *Server) URL() string { return s.srv.ClientURL() }

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
