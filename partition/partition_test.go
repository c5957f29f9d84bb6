package partition_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/partition"
)

func TestSpec_places_a_subject_after_its_first_token_and_strips_it_back(t *testing.T) {
	tests := []struct{ subject, placed string }{
		{"auth.user.created", "auth.p7.user.created"},
		{"orders.created", "orders.p7.created"},
		{"ping", "ping.p7"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			placed := partition.Subject(tt.subject, 7)
			assert.Equal(t, tt.placed, placed)
			assert.Equal(t, tt.subject, partition.Original(placed, "7/12"))
			assert.Equal(t, placed, partition.Original(placed, ""), "without the header nothing is stripped")
		})
	}
	assert.Equal(t, "auth.pending.created", partition.Original("auth.pending.created", "7/12"), "a token that only starts with p is kept")
}

func TestSpec_a_partition_filter_matches_exactly_its_partitions_subjects(t *testing.T) {
	tests := []struct {
		filter, subject string
		p               int
		match           bool // does partition 3's filter match it
	}{
		{"auth.user.>", "auth.user.created", 3, true},
		{"auth.user.>", "auth.user.role.updated", 3, true},
		{"auth.user.>", "auth.user.created", 4, false},
		{"orders.*", "orders.created", 0, false},
		{"auth.*.created", "auth.user.created", 11, false},
		{"auth.*.created", "auth.user.created", 3, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.filter, tt.p), func(t *testing.T) {
			f := partition.Filter(tt.filter, tt.p)
			assert.True(t, partition.Matches(f, partition.Subject(tt.subject, tt.p)), "%s matches its own placement", f)
			assert.Equal(t, tt.match, partition.Matches(partition.Filter(tt.filter, 3), partition.Subject(tt.subject, tt.p)))
			assert.False(t, partition.Matches(f, tt.subject), "a partition filter never matches the unplaced subject")
			assert.False(t, partition.Matches(tt.filter, partition.Subject(tt.subject, tt.p)), "the group's own filter never matches a placed subject")
		})
	}
}

func TestSpec_refuses_group_filters_that_would_read_partitions_twice(t *testing.T) {
	for _, f := range []string{">", "auth.>", "auth.*.>", "*.>"} {
		err := partition.CheckGroupFilter(f)
		require.Error(t, err, f)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		assert.ErrorIs(t, err, partition.ErrInvalidSpec)
	}
	for _, f := range []string{"auth.user.>", "orders.*", "auth.*.created", "auth.user.created"} {
		assert.NoError(t, partition.CheckGroupFilter(f), f)
	}
}

func TestSpec_validate(t *testing.T) {
	key := func(e *envelope.Event) string { return e.OrganizationID }
	tests := []struct {
		name string
		spec partition.Spec
		ok   bool
	}{
		{"valid", partition.Spec{Subjects: []string{"auth.user.>"}, Count: 12, Key: key}, true},
		{"no count", partition.Spec{Subjects: []string{"auth.user.>"}, Key: key}, false},
		{"too many", partition.Spec{Subjects: []string{"auth.user.>"}, Count: partition.MaxCount + 1, Key: key}, false},
		{"no key", partition.Spec{Subjects: []string{"auth.user.>"}, Count: 12}, false},
		{"no subjects", partition.Spec{Count: 12, Key: key}, false},
		{"bad filter", partition.Spec{Subjects: []string{"auth..user"}, Count: 12, Key: key}, false},
		{"> not last", partition.Spec{Subjects: []string{"auth.>.user"}, Count: 12, Key: key}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.True(t, errors.Is(err, envelope.ErrInvalidConfig) && errors.Is(err, partition.ErrInvalidSpec), "%v", err)
		})
	}
}

func TestSpec_a_keys_partition_is_fnv1a_modulo_count(t *testing.T) {
	s := partition.Spec{Count: 12}
	for _, key := range []string{"", "user-1", "org-42", "ünïcode"} {
		h := fnv.New32a()
		h.Write([]byte(key))
		assert.Equal(t, int(h.Sum32()%12), s.Of(key), key)
	}
	e := &envelope.Event{OrganizationID: "org-42"}
	s.Key = func(e *envelope.Event) string { return e.OrganizationID }
	placed, header := s.Place("auth.user.created", e)
	p := s.Of("org-42")
	assert.Equal(t, partition.Subject("auth.user.created", p), placed)
	gp, count, ok := partition.ParseHeader(header)
	require.True(t, ok)
	assert.Equal(t, []int{p, 12}, []int{gp, count})
	for _, bad := range []string{"", "7", "7/", "x/12", "12/12", "-1/12", "1/0"} {
		_, _, ok := partition.ParseHeader(bad)
		assert.False(t, ok, bad)
	}
}

func TestAssign_balances_within_one_and_is_the_same_for_everyone(t *testing.T) {
	for members := 1; members <= 7; members++ {
		for _, units := range []int{1, 5, 12, 13, 64} {
			var ms []string
			for i := range members {
				ms = append(ms, fmt.Sprintf("host-%d", i))
			}
			a := partition.Assign(units, ms)
			b := partition.Assign(units, []string{ms[len(ms)-1], ms[0]}) // another order, another view
			if members <= 2 {
				assert.Equal(t, a, b, "the order of the list does not matter")
			}
			seen := map[int]bool{}
			lo, hi := units, 0
			for _, m := range ms {
				n := len(a[m])
				lo, hi = min(lo, n), max(hi, n)
				for _, u := range a[m] {
					assert.False(t, seen[u], "unit %d assigned twice", u)
					seen[u] = true
				}
			}
			assert.Len(t, seen, units, "every unit has an owner")
			assert.LessOrEqual(t, hi-lo, 1, "%d members, %d units: %v", members, units, a)
		}
	}
	assert.Nil(t, partition.Assign(12, nil))
}

func TestAssign_moves_few_units_when_a_member_joins(t *testing.T) {
	before := partition.Assign(13, []string{"a", "b", "c"})
	after := partition.Assign(13, []string{"a", "b", "c", "d"})
	owner := func(a map[string][]int) map[int]string {
		o := map[int]string{}
		for m, us := range a {
			for _, u := range us {
				o[u] = m
			}
		}
		return o
	}
	ob, oa := owner(before), owner(after)
	moved := 0
	for u := range 13 {
		if ob[u] != oa[u] && oa[u] != "d" {
			moved++
		}
	}
	t.Logf("13 units, 3 -> 4 members: %d units to the new member, %d moved between the others", len(after["d"]), moved)
	assert.LessOrEqual(t, moved, 4, "besides the new member's share, few units move")
}

func TestWithin_is_the_subset_of_subject_filters(t *testing.T) {
	tests := []struct {
		filter, of string
		within     bool
	}{
		{"auth.user.created", "auth.user.>", true},
		{"auth.user.*", "auth.user.>", true},
		{"auth.user.>", "auth.user.>", true},
		{"auth.user.>", "auth.>", true},
		{"auth.>", "auth.user.>", false},
		{"auth.user.created", "auth.*.created", true},
		{"auth.*.created", "auth.user.created", false},
		{"auth.user", "auth.user.>", false},
		{"orders.created", "orders.*", true},
		{"orders.created.x", "orders.*", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.within, partition.Within(tt.filter, tt.of), "%s within %s", tt.filter, tt.of)
	}
}
