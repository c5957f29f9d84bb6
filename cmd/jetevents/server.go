package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// serverReadyTimeout bounds the wait for a started server to accept
// connections; start-up failures are reported as soon as the server logs
// them, long before.
const serverReadyTimeout = 30 * time.Second

// cmdServer runs a NATS server with JetStream until ctx ends (Ctrl-C,
// SIGTERM): the stand-in for `docker-compose up -d nats` on a machine
// without Docker. The store is persistent by default, in
// $XDG_DATA_HOME/jetevents/<port> (~/.local/share/jetevents/<port>), so a
// restart keeps streams, consumers and messages. It runs nats-server itself
// rather than package embedded, to see the server's own start-up errors
// (port in use, unknown host, unwritable store) the moment they happen.
func cmdServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("server", stderr)
	host := fs.String("host", "127.0.0.1", "interface to listen on (0.0.0.0: every interface)")
	port := fs.Int("port", 4222, "client port (0: a random free one, with a temporary store unless -store is given)")
	store := fs.String("store", "", "JetStream store folder (default: $XDG_DATA_HOME/jetevents/PORT, i.e. ~/.local/share/jetevents/PORT)")
	temp := fs.Bool("temp", false, "use a temporary store, removed on exit (streams and messages do not survive)")
	level := fs.String("log", "warn", "server log on stderr: off, error, warn, info, debug or trace")
	name := fs.String("name", "jetevents", "server name")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lvl, ok := logLevels[strings.ToLower(*level)]
	if !ok {
		return usageErr("server", "-log %q: want off, error, warn, info, debug or trace", *level)
	}
	if *port < 0 || *port > 65535 {
		return usageErr("server", "-port %d is not a port (0 to 65535; 0 picks a free one)", *port)
	}
	if *temp && *store != "" {
		return usageErr("server", "-temp and -store exclude each other")
	}
	if net.ParseIP(*host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, *host); err != nil {
			return opErr(fmt.Sprintf("cannot listen on host %q: %v", *host, oneLine(err.Error())),
				"use an address of this machine: -host 127.0.0.1 (this machine only) or -host 0.0.0.0 (every interface)", errServerStart, err)
		}
	}

	dir, remove, err := serverStore(*store, *temp, *port)
	if err != nil {
		return err
	}
	if remove {
		defer os.RemoveAll(dir)
	}

	log := &serverLog{w: stderr, level: lvl, fatal: make(chan error, 1)}
	srv, err := server.NewServer(&server.Options{
		ServerName: *name,
		Host:       *host,
		Port:       cmpPort(*port),
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true, // the command handles SIGINT/SIGTERM itself
	})
	if err != nil {
		return opErr(fmt.Sprintf("cannot configure nats-server: %v", err), "check -host, -port and -store", errServerStart, err)
	}
	srv.SetLoggerV2(log, lvl >= levelDebug, lvl >= levelTrace, false)
	go srv.Start()
	if err := waitReady(ctx, srv, log); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return startError(err, *host, *port, dir)
	}

	url := srv.ClientURL()
	kept := "kept across restarts; -store DIR to choose another, -temp for a throwaway one"
	if remove {
		kept = "temporary: removed on exit"
	}
	fmt.Fprintf(stdout, "jetevents server: nats-server %s with JetStream listening on %s\n", server.VERSION, url)
	fmt.Fprintf(stdout, "  store:   %s (%s)\n", dir, kept)
	fmt.Fprintf(stdout, "  connect: export NATS_URL=%s (or -server %s)\n", url, url)
	fmt.Fprintf(stdout, "  stop:    Ctrl-C or SIGTERM\n")

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-log.fatal:
		runErr = opErr(fmt.Sprintf("nats-server stopped: %s", oneLine(err.Error())), "see the log above (-log info for more)", errServerStart, err)
	}
	fmt.Fprintln(stdout, "shutting down: closing client connections and flushing the store")
	srv.Shutdown()
	srv.WaitForShutdown()
	if remove {
		fmt.Fprintln(stdout, "stopped; temporary store removed")
	} else {
		fmt.Fprintf(stdout, "stopped; store kept in %s\n", dir)
	}
	return runErr
}

func cmpPort(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// serverStore decides and prepares the store folder: -store, or a
// temporary one (-temp, or -port 0 without -store), or the default
// per-port folder under the user's data directory. remove says whether the
// folder goes on exit. An unwritable folder is an error now, with its cause.
func serverStore(store string, temp bool, port int) (dir string, remove bool, err error) {
	switch {
	case temp || (store == "" && port == 0):
		dir, err := os.MkdirTemp("", "jetevents-server-*")
		if err != nil {
			return "", false, opErr(fmt.Sprintf("cannot create a temporary store: %v", err), "pass -store DIR", errServerStart, err)
		}
		return dir, true, nil
	case store == "":
		base, err := dataHome()
		if err != nil {
			return "", false, opErr(fmt.Sprintf("no default store folder: %v", err), "pass -store DIR", errServerStart, err)
		}
		store = filepath.Join(base, "jetevents", strconv.Itoa(port))
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return "", false, opErr(fmt.Sprintf("cannot create store folder %s: %v", store, pathErrText(err)), "pick a folder you can write with -store DIR", errServerStart, err)
	}
	f, err := os.CreateTemp(store, ".write-test-*")
	if err != nil {
		return "", false, opErr(fmt.Sprintf("cannot write in store folder %s: %v", store, pathErrText(err)), "fix its permissions or pick another with -store DIR", errServerStart, err)
	}
	f.Close()
	os.Remove(f.Name())
	abs, err := filepath.Abs(store)
	if err != nil {
		abs = store
	}
	return abs, false, nil
}

// dataHome is $XDG_DATA_HOME, else ~/.local/share.
func dataHome() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share"), nil
}

func pathErrText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// waitReady waits until srv accepts connections, the server logs a fatal
// error, or ctx ends.
func waitReady(ctx context.Context, srv *server.Server, log *serverLog) error {
	deadline := time.Now().Add(serverReadyTimeout)
	for {
		select {
		case err := <-log.fatal:
			return err
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// Short waits, so that a fatal error logged meanwhile is seen
		// promptly; the outcome does not depend on this interval.
		if srv.ReadyForConnections(50 * time.Millisecond) {
			// A fatal error can race the listener (JetStream failing
			// after the port opened): give it precedence.
			select {
			case err := <-log.fatal:
				return err
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %s", serverReadyTimeout)
		}
	}
}

// startError says why the server did not start, and what to do.
func startError(err error, host string, port int, dir string) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.EADDRINUSE):
		return opErr(fmt.Sprintf("cannot listen on %s: the port is in use (another nats-server or jetevents server?)", addr),
			"stop what listens there, or pick another port with -port (then NATS_URL=nats://"+net.JoinHostPort(host, "PORT")+")", errServerStart, err)
	case errors.Is(err, syscall.EACCES):
		return opErr(fmt.Sprintf("cannot listen on %s: permission denied", addr),
			"pick a port above 1023 with -port", errServerStart, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return opErr(fmt.Sprintf("cannot listen on %s: %s is not an address of this machine", addr, host),
			"use -host 127.0.0.1 (this machine only) or -host 0.0.0.0 (every interface)", errServerStart, err)
	case errors.As(err, &dnsErr):
		return opErr(fmt.Sprintf("cannot listen on host %q: %v", host, dnsErr),
			"use -host 127.0.0.1 or -host 0.0.0.0", errServerStart, err)
	case strings.Contains(err.Error(), "JetStream"):
		return opErr(fmt.Sprintf("JetStream did not start with store %s: %s", dir, oneLine(err.Error())),
			"check the folder (space, permissions) or pick another with -store DIR", errServerStart, err)
	}
	return opErr(fmt.Sprintf("nats-server did not start: %s", oneLine(err.Error())), "run again with -log debug for the server's log", errServerStart, err)
}

// Server log levels, most quiet first.
const (
	levelOff = iota
	levelError
	levelWarn
	levelInfo
	levelDebug
	levelTrace
)

var logLevels = map[string]int{
	"off": levelOff, "error": levelError, "warn": levelWarn, "info": levelInfo, "debug": levelDebug, "trace": levelTrace,
}

// serverLog is nats-server's logger: lines at or above level go to w, and a
// fatal error (nats-server's own logger would exit the process) is handed
// to the command on fatal, with the error value the server logged when
// there is one.
type serverLog struct {
	mu    sync.Mutex
	w     io.Writer
	level int
	fatal chan error
}

func (l *serverLog) logf(level int, tag, format string, v []any) {
	if level > l.level {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s [%s] %s\n", time.Now().Format("15:04:05.000"), tag, fmt.Sprintf(format, v...))
}

func (l *serverLog) Noticef(format string, v ...any) { l.logf(levelInfo, "INF", format, v) }
func (l *serverLog) Warnf(format string, v ...any)   { l.logf(levelWarn, "WRN", format, v) }
func (l *serverLog) Errorf(format string, v ...any)  { l.logf(levelError, "ERR", format, v) }
func (l *serverLog) Debugf(format string, v ...any)  { l.logf(levelDebug, "DBG", format, v) }
func (l *serverLog) Tracef(format string, v ...any)  { l.logf(levelTrace, "TRC", format, v) }

// Fatalf is not printed: the command reports the error itself, once.
func (l *serverLog) Fatalf(format string, v ...any) {
	err := errors.New(fmt.Sprintf(format, v...))
	for _, a := range v {
		if e, ok := a.(error); ok {
			err = fmt.Errorf("%s: %w", fmt.Sprintf(format, v...), e)
			break
		}
	}
	select {
	case l.fatal <- err:
	default: // the first fatal error is the one reported
	}
}
