package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jetevents/events/embedded"
)

// cmdServer runs an embedded JetStream server until ctx ends: the stand-in for
// `docker-compose up -d nats` on a machine without Docker.
func cmdServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("server", stderr)
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	port := fs.Int("port", 4222, "client port (0: random)")
	store := fs.String("store", "", "JetStream store directory (default: a temporary one, removed on exit)")
	logs := fs.Bool("log", false, "print the server's own log")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	srv, err := embedded.Start(embedded.Config{Host: *host, Port: *port, StoreDir: *store, Logs: *logs, ServerName: "jetevents"})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Fprintf(stdout, "nats-server with JetStream listening on %s (store %s); Ctrl-C to stop\n", srv.URL(), srv.StoreDir())
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}
