package partition

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"time"
)

// Assign spreads units (a group's partitions, and its own durable for the
// events published without one) over the live members of the group: each
// member gets units/len(members) of them, some one more, so that counts
// differ by at most one. It is a pure function of its arguments: every
// member computes the same assignment from the same member list, without
// talking to the others. A unit goes to the member that ranks highest for
// it (rendezvous hashing) among those with room left, so that a member
// joining or leaving moves few units besides its own share.
//
// The result maps each member to its units in increasing order; a member
// listed twice counts once. No members: nil.
func Assign(units int, members []string) map[string][]int {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) == 0 || units <= 0 {
		return nil
	}
	base, extra := units/len(ms), units%len(ms)
	// The members that take one unit more: the extra highest ranked for
	// the count itself, so that the choice too is stable.
	room := make(map[string]int, len(ms))
	byRank := rank(ms, -1)
	for i, m := range byRank {
		room[m] = base
		if i < extra {
			room[m]++
		}
	}
	out := make(map[string][]int, len(ms))
	for u := range units {
		for _, m := range rank(ms, u) {
			if room[m] > 0 {
				room[m]--
				out[m] = append(out[m], u)
				break
			}
		}
	}
	return out
}

// rank orders members by their score for unit, highest first.
func rank(members []string, unit int) []string {
	type scored struct {
		m string
		s uint64
	}
	ss := make([]scored, len(members))
	for i, m := range members {
		h := fnv.New64a()
		_, _ = h.Write([]byte(m))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(strconv.Itoa(unit)))
		ss[i] = scored{m, h.Sum64()}
	}
	slices.SortFunc(ss, func(a, b scored) int {
		if c := cmp.Compare(b.s, a.s); c != 0 {
			return c
		}
		return cmp.Compare(a.m, b.m)
	})
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.m
	}
	return out
}

// Member is what a process of a partitioned group lists about itself in
// the group's membership (router beats; jetevents consumers and the
// console read it), as JSON.
type Member struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Count is the group's partition count; Units the units the process
	// runs now (a partition, or Count: the group's own durable, for events
	// published without a partition).
	Count int   `json:"count"`
	Units []int `json:"units"`
}

// MemberKey is the membership key of member in the group durable of
// stream (the key of its entry in the jetstream transport's MemberBucket).
func MemberKey(stream, durable, member string) string {
	return stream + "." + durable + "." + member
}

// Durable is the durable that reads unit u of a partitioned group whose
// own durable is group: <group>-p<u> for a partition, group itself for
// unit count (the events published without a partition).
func Durable(group string, u, count int) string {
	if u == count {
		return group
	}
	return group + "-" + Token(u)
}
