// Package idempotency holds the contract of an idempotency store (Store:
// which events a consumer group has processed, with a claim step so that
// two deliveries of one event do not both run its handler) and MemoryStore,
// the in-process one for tests. jetstream.KVStore is the one shared by
// every process of a group; middleware.Idempotency is the step that uses
// them. Store implementations keep Records and decide claims with Decide,
// so that every store answers alike.
package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Default idempotency settings.
const (
	// DefaultIdempotencyTTL: how long a processed id is remembered.
	DefaultIdempotencyTTL = 24 * time.Hour
	// DefaultClaimTTL: how long a claim blocks other deliveries of an event
	// whose holder cannot be identified, before it may be taken over.
	DefaultClaimTTL = 5 * time.Minute
)

// Holder identifies the delivery that claims an event: the stream message
// (stream and sequence) and its delivery attempt. Zero fields mean unknown
// (a message that did not come from a transport).
type Holder struct {
	Stream    string `json:"stream,omitempty"`
	StreamSeq uint64 `json:"seq,omitempty"`
	Attempt   uint64 `json:"attempt,omitempty"`
}

func (h Holder) known() bool { return h.Stream != "" && h.StreamSeq > 0 }

func (h Holder) sameMessage(o Holder) bool {
	return h.known() && h.Stream == o.Stream && h.StreamSeq == o.StreamSeq
}

// ClaimStatus is the outcome of Store.Claim.
type ClaimStatus int

const (
	// ClaimAcquired: the caller holds the event and must handle it, then
	// Complete (success) or Release (failure) the claim.
	ClaimAcquired ClaimStatus = iota + 1
	// ClaimProcessed: the event was already handled; ack without handling.
	ClaimProcessed
	// ClaimDuplicate: another stream message carrying the same event id holds
	// a claim. That message's own delivery cycle settles the event (handled,
	// retried, or dead-lettered), so this copy is acked without handling.
	ClaimDuplicate
	// ClaimBusy: a delivery whose fate cannot be told holds a live claim;
	// retry later (the claim is taken over once it expires).
	ClaimBusy
)

// String names the status for logs.
func (s ClaimStatus) String() string {
	switch s {
	case ClaimAcquired:
		return "acquired"
	case ClaimProcessed:
		return "processed"
	case ClaimDuplicate:
		return "duplicate"
	case ClaimBusy:
		return "busy"
	}
	return fmt.Sprintf("ClaimStatus(%d)", int(s))
}

// Claim is a store's answer to Claim.
type Claim struct {
	// Key is the claimed key.
	Key string
	// Status says what the caller must do.
	Status ClaimStatus
	// Holder is the caller (ClaimAcquired) or the current holder (otherwise).
	Holder Holder
	// Revision is the store's revision of the caller's claim, checked by
	// Release so that a claim taken over by another delivery is not deleted.
	Revision uint64
}

// Store records which events a consumer has processed, with a claim step so
// that two processes handling the same event at the same time do not both
// run the handler. Implementations must be safe for concurrent use and
// atomic per key (KVStore: JetStream KV Create and compare-and-set Update;
// MemoryStore: a mutex). Both also implement Watermill's
// middleware.ExpiringKeyRepository.
type Store interface {
	// Claim tries to take key for holder. It takes over a claim left by an
	// earlier delivery of the same stream message (a higher attempt means the
	// broker gave up on that delivery) or an expired claim.
	Claim(ctx context.Context, key string, holder Holder) (Claim, error)
	// Complete marks the claimed key processed; it is remembered for the
	// store's TTL.
	Complete(ctx context.Context, c Claim) error
	// Release drops the claim (the handler failed), unless another delivery
	// took it over meanwhile, so that the next delivery can claim the key.
	Release(ctx context.Context, c Claim) error
}

// Record is a store's value for a key: a live claim or a processed mark.
// Store implementations keep it encoded (EncodeClaim, EncodeDone, ParseRecord)
// and decide claims with Decide.
type Record struct {
	State string `json:"state"`
	Holder
	// Until is when a claim expires (Unix nanoseconds); 0 for done.
	Until int64 `json:"until,omitempty"`
}

const (
	stateClaimed = "claimed"
	stateDone    = "done"
)

// ClaimRecord is the record of a claim by h that expires at until.
func ClaimRecord(h Holder, until time.Time) Record {
	return Record{State: stateClaimed, Holder: h, Until: until.UnixNano()}
}

// DoneRecord is the record of an event processed by h.
func DoneRecord(h Holder) Record { return Record{State: stateDone, Holder: h} }

// Done reports whether r is a processed mark (not a claim).
func (r Record) Done() bool { return r.State == stateDone }

// Encode is r as stored: its JSON (what encoding/json writes for it, byte
// for byte). It is written without reflection because a store encodes a
// record or two for every event.
func (r Record) Encode() []byte { return r.AppendEncode(make([]byte, 0, 96)) }

// AppendEncode appends r as Encode writes it to b.
func (r Record) AppendEncode(b []byte) []byte {
	b = append(b, `{"state":`...)
	b = appendJSONString(b, r.State)
	if r.Stream != "" {
		b = append(b, `,"stream":`...)
		b = appendJSONString(b, r.Stream)
	}
	if r.StreamSeq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, r.StreamSeq, 10)
	}
	if r.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendUint(b, r.Attempt, 10)
	}
	if r.Until != 0 {
		b = append(b, `,"until":`...)
		b = strconv.AppendInt(b, r.Until, 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json quotes it: as is when every
// byte is printable ASCII that needs no escape (stream names, states),
// through encoding/json otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ParseRecord decodes a stored record of key. Errors match ErrStore.
func ParseRecord(key string, b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || (r.State != stateClaimed && r.State != stateDone) {
		return Record{}, fmt.Errorf("%w: key %s: malformed record %q", ErrStore, key, b)
	}
	return r, nil
}

// Decide says what a new claim by h meets in an existing record r:
// ClaimAcquired means the existing claim may be taken over.
func Decide(r Record, h Holder, now time.Time) ClaimStatus {
	if r.State == stateDone {
		return ClaimProcessed
	}
	expired := now.UnixNano() >= r.Until
	if r.sameMessage(h) {
		// The broker redelivers a message only after the previous delivery
		// was nacked or its AckWait expired (InProgress keeps a live handler's
		// delivery from expiring): a later attempt supersedes the claim.
		if h.Attempt > r.Attempt || expired {
			return ClaimAcquired
		}
		return ClaimBusy
	}
	if r.known() && h.known() {
		// Another stored copy of the event holds the claim: its own delivery
		// cycle settles the event, unless the claim expired (its holder
		// crashed, or was dead-lettered without releasing it): then this
		// copy takes over rather than being acked unhandled.
		if expired {
			return ClaimAcquired
		}
		return ClaimDuplicate
	}
	if expired {
		return ClaimAcquired
	}
	return ClaimBusy
}

// AsyncClaimer is implemented by stores that can start a claim without
// waiting for its answer (jetstream.KVStore): the router uses it to overlap
// the claims of queued events with the handling of the ones before them.
// The returned function waits for the answer (bounded by its ctx); a store
// answers as Claim would.
type AsyncClaimer interface {
	ClaimAsync(key string, holder Holder) func(context.Context) (Claim, error)
}

// ErrStore is matched by every failure of an idempotency store operation
// (KV unreachable, bucket missing, malformed record).
var ErrStore = errors.New("idempotency store")
