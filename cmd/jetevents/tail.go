package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/marshaler"
)

// cmdTail prints the events of a stream as they arrive, one JSON line each,
// through an ordered consumer: it never acks, never creates a durable, and so
// never disturbs the consumers doing the real work.
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", stderr)
	server := fs.String("server", defaultServer(), "NATS URL")
	stream := fs.String("stream", "AUTH_EVENTS", "stream to read")
	subject := fs.String("subject", "", "filter subject (default: the whole stream)")
	all := fs.Bool("all", false, "start from the first message instead of new ones")
	limit := fs.Int("n", 0, "stop after n events (0: until interrupted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nc, js, err := connect(*server)
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg := natsjs.OrderedConsumerConfig{DeliverPolicy: natsjs.DeliverNewPolicy}
	if *all {
		cfg.DeliverPolicy = natsjs.DeliverAllPolicy
	}
	if *subject != "" {
		cfg.FilterSubjects = []string{*subject}
	}
	cons, err := js.OrderedConsumer(ctx, *stream, cfg)
	if err != nil {
		return fmt.Errorf("tail %s: %w", *stream, err)
	}
	m := marshaler.Default()
	enc := json.NewEncoder(stdout)
	for n := 0; *limit == 0 || n < *limit; n++ {
		msg, err := cons.Next(natsjs.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, natsjs.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("tail %s: %w", *stream, err)
		}
		if err := enc.Encode(describe(m, msg)); err != nil {
			return err
		}
	}
	return nil
}

// line is what tail and dlq list print per message.
type line struct {
	Subject  string            `json:"subject"`
	Sequence uint64            `json:"seq"`
	Event    json.RawMessage   `json:"event,omitempty"`
	Error    string            `json:"decode_error,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
}

func describe(m *marshaler.Marshaler, msg natsjs.Msg) line {
	l := line{Subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		l.Sequence = md.Sequence.Stream
	}
	if _, e, err := m.DecodeNATS(msg.Headers(), msg.Data()); err != nil {
		l.Error = err.Error()
	} else if b, err := e.MarshalJSON(); err == nil {
		l.Event = b
	}
	return l
}

func connect(url string) (*nats.Conn, natsjs.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("jetevents-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w (is a server running? try: jetevents server)", url, err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
