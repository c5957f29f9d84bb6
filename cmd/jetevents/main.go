// Command jetevents is the operator's tool for a jetevents deployment:
//
//	jetevents server [-port 4222] [-store DIR | -temp] [-log LEVEL]
//	                                    run a NATS server with JetStream (persistent store)
//	jetevents streams apply -f FILE     create/update streams and consumers (idempotent)
//	jetevents streams list              streams (subjects, messages, bytes) and consumers
//	jetevents consumers [STREAM [NAME]] consumers: pending, ack pending, redelivered,
//	                                    waiting, last active, stalled, paused until
//	jetevents consumers pause GROUP (-until TIME | -for D) [-stream S]
//	                                    pause a group's durable (nats-server 2.11+);
//	                                    it resumes by itself at the deadline
//	jetevents consumers resume GROUP [-stream S]
//	                                    resume it now
//	jetevents publish SUBJECT -type T [-data JSON]
//	                                    publish one event through the library's publisher
//	jetevents tail [-stream S] [-subject auth.>] [-all] [-n N]
//	                                    decoded events, one JSON line each
//	jetevents dlq list [-subject dlq.auth.>] [-n N] [-json]
//	jetevents dlq show SEQ              one dead letter: headers, reason, error, event
//	jetevents dlq replay (SEQ | -all [-subject S]) [-keep] [-original-msg-id]
//	                                    republish originals, then delete the dead letters
//	jetevents dlq purge [-subject S] [-yes]
//	                                    purge dead letters (refuses without -yes)
//	jetevents outbox status -db URL [-table T] [-max-age D] [-json]
//	                                    rows of a service's outbox not yet relayed
//	jetevents ui [-listen 127.0.0.1:8080] [-writes] [-db URL]
//	                                    the web console (package console), read-only
//	                                    unless -writes, on loopback unless -listen says otherwise
//
// Every command but server connects with the same flags: -server (default
// $NATS_URL, else the selected nats CLI context's url, else
// nats://127.0.0.1:4222), -context NAME (the nats CLI's context files),
// -creds, -nkey, -user/-password, -token, -tlscert/-tlskey/-tlsca.
// Reading commands (streams list, consumers, tail, dlq list/show) never ack,
// create durables or change anything; tail's ordered consumer is deleted
// when it exits. Exit status: 0 on success, 2 for a command line it does not
// understand, 1 for any other failure, with one line on stderr saying what
// happened and what to do next. The dead-letter logic (what a replay
// restores, and why it publishes under a fresh Nats-Msg-Id by default) is
// package dlq's, which the web console (jetevents ui) shares.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err (one line) and returns the exit status for it.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		// -h: the flag set already printed the flags.
		return 0
	case errors.Is(err, errNoCommand):
		fmt.Fprintln(stderr, usage)
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "jetevents: "+oneLine(err.Error()))
		return 2
	}
	fmt.Fprintln(stderr, "jetevents: "+oneLine(err.Error()))
	return 1
}

// errNoCommand: jetevents without arguments; main prints the usage.
var errNoCommand = fmt.Errorf("%w: no command", errUsage)

const usage = `usage: jetevents <command> [flags]

commands:
  server                  run a NATS server with JetStream (persistent store; for local work and the examples)
  streams apply -f FILE   create or update the streams and consumers FILE declares (YAML or JSON)
  streams list            list streams and their consumers
  consumers [STREAM]      consumers with pending, ack pending, redelivered, waiting, last active, stalled, paused until
  consumers pause GROUP   pause a group's durable (-until TIME | -for D); it resumes by itself then
  consumers resume GROUP  resume a paused group's durable now
  publish SUBJECT         publish one event (-type, -data) through the library's publisher
  tail                    print decoded events as they arrive
  dlq list|show|replay|purge
                          inspect, replay or purge dead letters
  outbox status -db URL   rows of a service's outbox table waiting to be relayed (PostgreSQL or SQLite)
  ui [-listen ADDR]       the web console: groups, lag, dead letters (search, replay, purge), schedules

connection flags (every command but server):
  -server URL  -context NAME  -creds FILE  -nkey FILE  -user U -password P  -token T
  -tlscert FILE -tlskey FILE  -tlsca FILE  -timeout 5s
  (default: $NATS_URL, else the nats CLI's selected context, else nats://127.0.0.1:4222)

run 'jetevents <command> -h' for the flags of a command`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errNoCommand
	}
	name := args[0]
	var err error
	switch name {
	case "server":
		err = cmdServer(ctx, args[1:], stdout, stderr)
	case "streams":
		name, err = sub(ctx, "streams", "apply or list", args[1:], stdout, stderr, streamsUsage, map[string]command{
			"apply": streamsApply, "list": streamsList, "ls": streamsList,
		})
	case "consumers", "consumer":
		switch {
		case len(args) > 1 && args[1] == "pause":
			name, err = "consumers pause", consumersPause(ctx, args[2:], stdout, stderr)
		case len(args) > 1 && args[1] == "resume":
			name, err = "consumers resume", consumersResume(ctx, args[2:], stdout, stderr)
		default:
			name, err = "consumers", cmdConsumers(ctx, args[1:], stdout, stderr)
		}
	case "publish", "pub":
		name, err = "publish", cmdPublish(ctx, args[1:], stdout, stderr)
	case "tail":
		err = cmdTail(ctx, args[1:], stdout, stderr)
	case "dlq":
		name, err = sub(ctx, "dlq", "list, show, replay or purge", args[1:], stdout, stderr, dlqUsage, map[string]command{
			"list": dlqList, "ls": dlqList, "show": dlqShow, "replay": dlqReplay, "purge": dlqPurge,
		})
	case "ui":
		if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
			fmt.Fprintln(stdout, uiUsage)
		}
		err = cmdUI(ctx, args[1:], stdout, stderr)
	case "outbox":
		name, err = sub(ctx, "outbox", "status", args[1:], stdout, stderr, outboxUsage, map[string]command{
			"status": outboxStatus,
		})
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		if strings.HasPrefix(name, "-") {
			return opErr(fmt.Sprintf("%s before the command", name), "flags go after it, e.g. jetevents streams list "+name+" ...", errUsage)
		}
		return opErr(fmt.Sprintf("unknown command %q", name), "run 'jetevents -h' for the commands", errUsage)
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// command is a subcommand's entry point.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// sub dispatches "group verb args..." and returns "group verb" for the
// error prefix.
func sub(ctx context.Context, group, verbs string, args []string, stdout, stderr io.Writer, help string, cmds map[string]command) (string, error) {
	if len(args) == 0 {
		return group, opErr("a subcommand is needed ("+verbs+")", "run 'jetevents "+group+" -h'", errUsage)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, help)
		return group, nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return group, opErr(fmt.Sprintf("unknown subcommand %q (%s)", args[0], verbs), "run 'jetevents "+group+" -h'", errUsage)
	}
	return group + " " + args[0], cmd(ctx, args[1:], stdout, stderr)
}

// synopses are the first line of each command's -h.
var synopses = map[string]string{
	"server":           "jetevents server [-host H] [-port 4222] [-store DIR | -temp] [-log LEVEL]",
	"streams apply":    "jetevents streams apply -f FILE [connection flags]",
	"streams list":     "jetevents streams list [connection flags]",
	"consumers":        "jetevents consumers [STREAM [CONSUMER]] [-json] [-stalled-after 1m] [connection flags]",
	"consumers pause":  "jetevents consumers pause GROUP (-until TIME | -for DURATION) [-stream S] [connection flags]",
	"consumers resume": "jetevents consumers resume GROUP [-stream S] [connection flags]",
	"publish":          "jetevents publish SUBJECT -type TYPE [-data JSON|@FILE] [-source S] [-org ID] [-id ID] [connection flags]",
	"tail":             "jetevents tail [-stream S] [-subject S] [-all] [-n N] [connection flags]",
	"dlq list":         "jetevents dlq list [-stream DLQ] [-subject dlq.auth.>] [-n N] [-json] [connection flags]",
	"dlq show":         "jetevents dlq show SEQ [-stream DLQ] [-json] [connection flags]",
	"dlq replay":       "jetevents dlq replay (SEQ | -all [-subject dlq.auth.>]) [-keep] [-original-msg-id] [-v] [connection flags]",
	"dlq purge":        "jetevents dlq purge [-stream DLQ] [-subject dlq.auth.>] [-yes] [connection flags]",
	"ui":               "jetevents ui [-listen 127.0.0.1:8080] [-writes] [-stream DLQ] [-db URL [-table T]] [-refresh 3s] [connection flags]",
	"outbox status":    "jetevents outbox status -db URL [-table jetevents_outbox] [-max-age D] [-json] [-timeout 10s]",
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("jetevents "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parseArgs prints the help itself, and errors as one line
	return fs
}

// parseFlags parses args into fs and refuses leftover arguments: a word
// after the flags is almost always a misplaced flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseArgs(fs, args, 0)
	return err
}

// parseArgs parses flags anywhere among args (`dlq show 5 -json` as well
// as `dlq show -json 5`) and returns the positional arguments, refusing
// more than maxPos of them. -h prints the command's synopsis and flags.
func parseArgs(fs *flag.FlagSet, args []string, maxPos int) ([]string, error) {
	cmd := strings.TrimPrefix(fs.Name(), "jetevents ")
	out := fs.Output()
	var pos []string
	for {
		fs.SetOutput(io.Discard) // the flag package's own error line: we print ours
		err := fs.Parse(args)
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "usage: %s\n\nflags:\n", cmp.Or(synopses[cmd], fs.Name()))
			fs.PrintDefaults()
			return nil, err
		}
		if err != nil {
			return nil, usageErr(cmd, "%s", oneLine(err.Error()))
		}
		if fs.NArg() == 0 {
			break
		}
		if len(pos) == maxPos {
			if maxPos == 0 {
				return nil, usageErr(cmd, "unexpected argument %q (flags start with -)", fs.Arg(0))
			}
			return nil, usageErr(cmd, "unexpected argument %q", fs.Arg(0))
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return pos, nil
}
