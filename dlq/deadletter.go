package dlq

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

// DeadLetter is one dead letter as it is shown: where it came from, why it
// died, and the event a replay would publish. Its JSON is what `jetevents
// dlq list -json` and `dlq show -json` print. Numbers are numbers.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream (what
	// Replay and Show take); Subject its subject there; Stored when it was
	// stored there.
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Stored  time.Time `json:"stored"`
	// The middleware's Dlq-* headers.
	OriginalSubject string `json:"original_subject,omitempty"`
	Stream          string `json:"stream,omitempty"`
	Consumer        string `json:"consumer,omitempty"`
	StreamSeq       uint64 `json:"stream_seq,omitempty"`
	Deliveries      int    `json:"deliveries,omitempty"`
	Handler         string `json:"handler,omitempty"`
	Reason          string `json:"reason,omitempty"`
	Error           string `json:"error,omitempty"`
	Time            string `json:"time,omitempty"`
	// MsgID is the original message's Nats-Msg-Id (the event id for events of
	// our publisher).
	MsgID string `json:"msg_id,omitempty"`
	// EventID, Type and Organization are the decoded event's (empty when it
	// does not decode).
	EventID      string `json:"event_id,omitempty"`
	Type         string `json:"type,omitempty"`
	Organization string `json:"organization_id,omitempty"`
	// Size is the payload's size in bytes.
	Size int `json:"size"`
	// Headers are all the dead letter's headers (Show only).
	Headers map[string][]string `json:"headers,omitempty"`
	// Event is the decoded original event, or DecodeError why it is not one
	// (a dead letter with reason unmarshal usually has one).
	Event       json.RawMessage `json:"event,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

// Describe reads a dead letter: its Dlq-* headers, and the event a replay
// would publish, decoded from the original headers and the payload with m
// (marshaler.Default() when nil).
func Describe(m *marshaler.Marshaler, raw *natsjs.RawStreamMsg) DeadLetter {
	if m == nil {
		m = marshaler.Default()
	}
	h := raw.Header
	dl := DeadLetter{
		Seq: raw.Sequence, Subject: raw.Subject, Stored: raw.Time.UTC(),
		OriginalSubject: h.Get(middleware.HeaderSubject),
		Stream:          h.Get(middleware.HeaderStream),
		Consumer:        h.Get(middleware.HeaderConsumer),
		Handler:         h.Get(middleware.HeaderHandler),
		Reason:          h.Get(middleware.HeaderReason),
		Error:           h.Get(middleware.HeaderError),
		Time:            h.Get(middleware.HeaderTime),
		MsgID:           headerFold(h, middleware.HeaderOriginalPrefix+nats.MsgIdHdr),
		Size:            len(raw.Data),
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(middleware.HeaderStreamSeq), 10, 64)
	dl.Deliveries, _ = strconv.Atoi(h.Get(middleware.HeaderDeliveries))
	// Decode what a replay would publish: the original headers, not the
	// dead letter's.
	orig := OriginalHeader(h)
	if _, e, err := m.DecodeNATS(orig, raw.Data); err != nil {
		dl.DecodeError = err.Error()
		dl.Type = orig.Get(marshaler.HeaderType)
		dl.Organization = orig.Get(marshaler.HeaderOrganization)
		dl.EventID = orig.Get(marshaler.HeaderID)
	} else {
		dl.EventID, dl.Type, dl.Organization = e.ID, e.Type, e.OrganizationID
		if b, err := e.MarshalJSON(); err != nil {
			dl.DecodeError = err.Error()
		} else {
			dl.Event = b
		}
	}
	return dl
}

// restoredHeaders are the original Nats-* headers a replay restores besides
// Nats-Msg-Id (see ReplayMessage for why the others are dropped).
var restoredHeaders = []string{"Nats-TTL"}

// OriginalHeader rebuilds the original message's headers from a dead
// letter's: the Dlq-* headers and the dead letter's own Nats-* headers
// dropped, the original Nats-TTL restored, without Nats-Msg-Id (a replay
// decides about it).
func OriginalHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, vs := range h {
		switch {
		case hasPrefixFold(k, middleware.HeaderOriginalPrefix+"Nats-"):
			orig := k[len(middleware.HeaderOriginalPrefix):]
			for _, r := range restoredHeaders {
				if strings.EqualFold(orig, r) {
					out[r] = slices.Clone(vs)
				}
			}
		case hasPrefixFold(k, "Dlq-"), hasPrefixFold(k, "Nats-"):
			// The dead letter's own headers: the middleware's, its own
			// Nats-Msg-Id, and those a direct get adds.
		default:
			out[k] = slices.Clone(vs)
		}
	}
	return out
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// headerFold is h's first value of key, matched case-insensitively:
// nats.Header keeps the case a publisher used.
func headerFold(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
