package memory

import (
	"context"
	"maps"
	"time"

	"github.com/jetevents/events/transport"
)

// defaultMemberTTL is Config.MemberTTL's default (as the jetstream
// transport's).
const defaultMemberTTL = 5 * time.Second

var _ transport.Membership = (*Bus)(nil)

// member is one entry of a membership set: listed until expires (on the
// bus's clock, so that a test with a manual clock drops a member by
// advancing it).
type member struct {
	info    []byte
	expires time.Time
}

// MemberTTL is Config.MemberTTL.
func (b *Bus) MemberTTL() time.Duration { return b.cfg.MemberTTL }

// Beat lists member in set for MemberTTL.
func (b *Bus) Beat(ctx context.Context, set, m string, info []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return transport.ErrClosed
	}
	if b.members == nil {
		b.members = make(map[string]map[string]member)
	}
	if b.members[set] == nil {
		b.members[set] = make(map[string]member)
	}
	b.members[set][m] = member{info: append([]byte(nil), info...), expires: b.now().Add(b.cfg.MemberTTL)}
	return nil
}

// Members lists the live members of set.
func (b *Bus) Members(ctx context.Context, set string) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, transport.ErrClosed
	}
	now := b.now()
	out := map[string][]byte{}
	maps.DeleteFunc(b.members[set], func(_ string, m member) bool { return !now.Before(m.expires) })
	for name, m := range b.members[set] {
		out[name] = append([]byte(nil), m.info...)
	}
	return out, nil
}

// Leave removes member from set.
func (b *Bus) Leave(ctx context.Context, set, m string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.members[set], m)
	return nil
}
