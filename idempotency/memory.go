package idempotency

import (
	"context"
	"fmt"
	"sync"
	"time"

	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/jetevents/events/envelope"
)

// MemoryStoreConfig configures a MemoryStore.
type MemoryStoreConfig struct {
	// TTL is how long a key is remembered after its last write. Default 24h.
	TTL time.Duration
	// ClaimTTL is how long a claim lives before another delivery may take it
	// over (see Store). Default 5m.
	ClaimTTL time.Duration
	// Clock tells the time for expiry. Default envelope.SystemClock; tests
	// inject eventstest.Clock to expire keys without waiting.
	Clock envelope.Clock
}

func (c *MemoryStoreConfig) setDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultIdempotencyTTL
	}
	if c.ClaimTTL == 0 {
		c.ClaimTTL = DefaultClaimTTL
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
}

// Validate reports an unusable configuration; errors match
// envelope.ErrInvalidConfig.
func (c MemoryStoreConfig) Validate() error {
	if c.TTL < 0 || c.ClaimTTL < 0 {
		return fmt.Errorf("%w: TTL %s and ClaimTTL %s must not be negative", envelope.ErrInvalidConfig, c.TTL, c.ClaimTTL)
	}
	return nil
}

// MemoryStore is a Store (and a Watermill ExpiringKeyRepository) in process
// memory, for tests and single-process use: its state is not shared between
// processes. Expired keys are dropped lazily (on access, and in a sweep when
// the map has doubled since the last one), so it runs no goroutine. Safe for
// concurrent use.
type MemoryStore struct {
	cfg MemoryStoreConfig

	mu        sync.Mutex
	keys      map[string]memEntry
	rev       uint64
	sweptSize int
}

type memEntry struct {
	rec     Record
	rev     uint64
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore. Errors match ErrInvalidConfig.
func NewMemoryStore(cfg MemoryStoreConfig) (*MemoryStore, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &MemoryStore{cfg: cfg, keys: make(map[string]memEntry)}, nil
}

// get returns the live entry of key. Lock held.
func (s *MemoryStore) get(key string, now time.Time) (memEntry, bool) {
	e, ok := s.keys[key]
	if ok && !now.Before(e.expires) {
		delete(s.keys, key)
		return memEntry{}, false
	}
	return e, ok
}

// put writes key. Lock held.
func (s *MemoryStore) put(key string, r Record, now time.Time) uint64 {
	s.rev++
	s.keys[key] = memEntry{rec: r, rev: s.rev, expires: now.Add(s.cfg.TTL)}
	if len(s.keys) >= 2*max(s.sweptSize, 64) {
		for k, e := range s.keys {
			if !now.Before(e.expires) {
				delete(s.keys, k)
			}
		}
		s.sweptSize = len(s.keys)
	}
	return s.rev
}

// Claim implements Store.
func (s *MemoryStore) Claim(_ context.Context, key string, h Holder) (Claim, error) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.get(key, now); ok {
		if st := Decide(e.rec, h, now); st != ClaimAcquired {
			return Claim{Key: key, Status: st, Holder: e.rec.Holder}, nil
		}
	}
	rev := s.put(key, ClaimRecord(h, now.Add(s.cfg.ClaimTTL)), now)
	return Claim{Key: key, Status: ClaimAcquired, Holder: h, Revision: rev}, nil
}

// Complete implements Store.
func (s *MemoryStore) Complete(_ context.Context, c Claim) error {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(c.Key, DoneRecord(c.Holder), now)
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, c Claim) error {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.get(c.Key, now); ok && e.rev == c.Revision {
		delete(s.keys, c.Key)
	}
	return nil
}

// IsDuplicate implements Watermill's middleware.ExpiringKeyRepository: it
// reports whether key is remembered and remembers it otherwise (as processed).
// Watermill's Deduplicator calls it before the handler, so a handler failure
// still leaves the key recorded; the Idempotency middleware records after
// success instead.
func (s *MemoryStore) IsDuplicate(_ context.Context, key string) (bool, error) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.get(key, now); ok {
		return true, nil
	}
	s.put(key, DoneRecord(Holder{}), now)
	return false, nil
}

// Len returns the number of keys held, expired ones not yet dropped included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// MemoryStore plugs into Watermill's Deduplicator too.
var _ wmmiddleware.ExpiringKeyRepository = (*MemoryStore)(nil)
