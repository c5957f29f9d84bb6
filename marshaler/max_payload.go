package marshaler

import (
	"fmt"

	"github.com/jetevents/events/envelope"
	"github.com/nats-io/nats.go"
)

// WireSize is the size NATS counts against a server's max_payload: the
// data, plus, when there are headers, the header block as nats.go writes it
// ("NATS/1.0\r\n", one "key: value\r\n" per value, "\r\n").
func WireSize(h nats.Header, data []byte) int {
	n := len(data)
	if len(h) == 0 {
		return n
	}
	n += len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// CheckMaxPayload refuses msg when it is larger (WireSize) than maxPayload,
// the most a broker accepts in one message (nats.Conn.MaxPayload, the
// memory bus's MaxPayload); maxPayload <= 0 means no limit. The error
// matches envelope.ErrInvalidEvent and envelope.ErrTooLarge: it is the one rule every
// publisher of the module applies to each message before it sends any, so
// that a batch is refused whole rather than half sent.
func CheckMaxPayload(msg *nats.Msg, maxPayload int64) error {
	if maxPayload <= 0 {
		return nil
	}
	if n := WireSize(msg.Header, msg.Data); int64(n) > maxPayload {
		return fmt.Errorf("%w: %w: %d bytes with headers (payload %d), over the max payload of %d the server accepts (max_payload)",
			envelope.ErrInvalidEvent, envelope.ErrTooLarge, n, len(msg.Data), maxPayload)
	}
	return nil
}
