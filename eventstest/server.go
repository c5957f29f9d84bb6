package eventstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/embedded"
)

// Server is an embedded JetStream server started for one test.
type Server struct {
	*embedded.Server
	// URL is the client URL, nats://127.0.0.1:PORT.
	URL string
	// Conn is a client connected to the server, closed when the test ends.
	Conn *nats.Conn
	// JS is a JetStream context on Conn.
	JS jetstream.JetStream
}

// NewServer starts an embedded JetStream server on a random 127.0.0.1 port
// with a temporary store, connects a client to it, and registers cleanup
// (client closed, server shut down, store removed) with t.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerWithConfig(t, embedded.Config{})
}

// NewServerWithConfig is NewServer with the server configured by cfg (a
// small MaxPayload, say). Host and Port are the random loopback ones of
// NewServer unless set; StoreDir defaults to a temporary directory of t, and
// ReadyTimeout to a minute.
func NewServerWithConfig(t testing.TB, cfg embedded.Config) *Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	if cfg.ReadyTimeout == 0 {
		// A generous readiness deadline: CI runs many packages' servers at
		// once on 2 cores, and a start that takes 10 s there is slow, not
		// broken.
		cfg.ReadyTimeout = time.Minute
	}
	srv, err := embedded.Start(cfg)
	if err != nil {
		t.Fatalf("eventstest: start server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	s := &Server{Server: srv, URL: srv.URL()}
	s.Conn = s.Connect(t)
	js, err := jetstream.New(s.Conn)
	if err != nil {
		t.Fatalf("eventstest: jetstream: %v", err)
	}
	s.JS = js
	return s
}

// Connect opens another client connection, closed when the test ends. It
// reconnects forever (every 20ms) so that it survives Stop/Restart.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
	}
	nc, err := nats.Connect(s.URL, append(base, opts...)...)
	if err != nil {
		t.Fatalf("eventstest: connect %s: %v", s.URL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
