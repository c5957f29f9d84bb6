// Command jetevents is the operator's tool for a jetevents deployment:
//
//	jetevents server [-port 4222] [-store DIR]      run an embedded JetStream server
//	jetevents streams apply -f scripts/streams.yaml create/update streams and consumers (idempotent)
//	jetevents streams list                          streams (subjects, messages, bytes) and consumers
//	                                                (filter, pending, ack pending, redelivered)
//	jetevents tail [-stream S] [-subject auth.>] [-all] [-n N]
//	                                                decoded events, one JSON line each
//	jetevents dlq list [-stream DLQ] [-subject dlq.>] [-n N]
//	                                                dead letters with their Dlq-* headers and event
//	jetevents dlq replay (-seq N | -all [-subject S]) [-keep] [-original-msg-id]
//	                                                republish originals, then delete the dead letters
//	jetevents dlq purge [-subject S] [-yes]         purge dead letters (refuses without -yes)
//
// Every command but server talks to -server (default $NATS_URL, else
// nats://127.0.0.1:4222). Reading commands (streams list, tail, dlq list)
// never ack, create durables or change anything. Exit status: 0 on success,
// 2 for a command line it does not understand, 1 for any other failure (the
// error on stderr). See dlq.go for what a replay restores, and why it
// publishes under a fresh Nats-Msg-Id by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		// -h: the flag set already printed the flags.
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "jetevents:", err)
		os.Exit(1)
	}
}

const usage = `usage: jetevents <command> [flags]

commands:
  server                 run an embedded NATS server with JetStream (for local work and the examples)
  streams apply -f FILE  create or update the streams and consumers FILE declares (YAML or JSON)
  streams list           list streams and their consumers
  tail                   print decoded events as they arrive
  dlq list|replay|purge  inspect, replay or purge dead letters

run 'jetevents <command> -h' for the flags of a command`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w\n%s", errUsage, usage)
	}
	switch args[0] {
	case "server":
		return cmdServer(ctx, args[1:], stdout, stderr)
	case "streams":
		return cmdStreams(ctx, args[1:], stdout, stderr)
	case "tail":
		return cmdTail(ctx, args[1:], stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}

// defaultServer is where commands connect unless told otherwise.
func defaultServer() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("jetevents "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs and refuses leftover arguments: a word
// after the flags is almost always a misplaced flag (`dlq replay 5 -keep`
// would otherwise silently ignore -keep).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q (flags go before it? see -h)", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}
