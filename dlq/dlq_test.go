package dlq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/dlq"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

func TestList_pages_by_stream_sequence(t *testing.T) {
	e := newEnv(t)
	for i := range 120 {
		e.deadLetter(t, "auth.user.created", "user.created", fmt.Sprintf("org-%d", i), middleware.ReasonMaxDeliver, errDBDown)
	}
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	var all []uint64
	from, pages := uint64(0), 0
	for {
		p, err := q.List(ctx, dlq.PageRequest{From: from})
		require.NoError(t, err)
		pages++
		assert.EqualValues(t, 120, p.Total)
		assert.False(t, p.ScanLimited)
		for _, d := range p.DeadLetters {
			all = append(all, d.Seq)
		}
		if p.Next == 0 {
			break
		}
		require.Greater(t, p.Next, from, "the next page starts after this one")
		from = p.Next
	}
	assert.Equal(t, 3, pages, "50 + 50 + 20")
	require.Len(t, all, 120)
	for i, s := range all {
		assert.EqualValues(t, i+1, s, "oldest first, each once")
	}
}

func TestList_describes_each_dead_letter(t *testing.T) {
	e := newEnv(t)
	ev := e.deadLetter(t, "auth.user.created", "user.created", "org-7", middleware.ReasonPermanent, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "DLQ")
	require.NoError(t, err)
	p, err := q.List(ctx, dlq.PageRequest{})
	require.NoError(t, err)
	require.Len(t, p.DeadLetters, 1)
	d := p.DeadLetters[0]
	assert.Equal(t, "dlq.auth.user.created", d.Subject)
	assert.Equal(t, "auth.user.created", d.OriginalSubject)
	assert.Equal(t, "AUTH_EVENTS", d.Stream)
	assert.Equal(t, "permanent", d.Reason)
	assert.Equal(t, "db down", d.Error)
	assert.Equal(t, 5, d.Deliveries)
	assert.Equal(t, ev.ID, d.EventID)
	assert.Equal(t, ev.ID, d.MsgID)
	assert.Equal(t, "user.created", d.Type)
	assert.Equal(t, "org-7", d.Organization)
	assert.Empty(t, d.DecodeError)
	assert.Contains(t, string(d.Event), `"organization_id":"org-7"`)
	assert.Nil(t, d.Headers, "List leaves the headers to Show")

	full, raw, err := q.Show(ctx, d.Seq)
	require.NoError(t, err)
	assert.Equal(t, []string{"permanent"}, full.Headers[middleware.HeaderReason])
	assert.Equal(t, d.Seq, raw.Sequence)
}

func TestList_filters_on_headers_and_text(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	e.deadLetter(t, "auth.user.deleted", "user.deleted", "org-2", middleware.ReasonPermanent, errors.New("card declined"))
	e.deadLetter(t, "auth.user.created", "user.created", "org-2", middleware.ReasonPermanent, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	tests := []struct {
		name   string
		filter dlq.Filter
		want   []uint64
	}{
		{"all", dlq.Filter{}, []uint64{1, 2, 3}},
		{"subject (server side)", dlq.Filter{Subject: "dlq.auth.user.created"}, []uint64{1, 3}},
		{"reason", dlq.Filter{Reason: "permanent"}, []uint64{2, 3}},
		{"type", dlq.Filter{Type: "user.deleted"}, []uint64{2}},
		{"organization", dlq.Filter{Organization: "org-2"}, []uint64{2, 3}},
		{"handler", dlq.Filter{Handler: "user-notifications"}, []uint64{1, 2, 3}},
		{"text in the error, any case", dlq.Filter{Text: "DECLINED"}, []uint64{2}},
		{"text in the payload", dlq.Filter{Text: `"n":1`}, []uint64{1, 2, 3}},
		{"subject and reason", dlq.Filter{Subject: "dlq.auth.user.created", Reason: "permanent"}, []uint64{3}},
		{"nothing matches", dlq.Filter{Reason: "unmarshal"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := q.List(ctx, dlq.PageRequest{Filter: tt.filter})
			require.NoError(t, err)
			var got []uint64
			for _, d := range p.DeadLetters {
				got = append(got, d.Seq)
			}
			assert.Equal(t, tt.want, got)
			assert.Zero(t, p.Next)

			var scanned []uint64
			require.NoError(t, q.Scan(ctx, tt.filter, func(raw *natsjs.RawStreamMsg, d dlq.DeadLetter) (bool, error) {
				scanned = append(scanned, raw.Sequence)
				return true, nil
			}))
			assert.Equal(t, tt.want, scanned, "Scan visits what List pages")
		})
	}
}

func TestList_a_search_examines_at_most_ScanLimit_messages_per_page(t *testing.T) {
	e := newEnv(t)
	for range 30 {
		e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	}
	e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonPermanent, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	req := dlq.PageRequest{Filter: dlq.Filter{Reason: "permanent"}, ScanLimit: 10}
	var found []uint64
	pages := 0
	for {
		p, err := q.List(ctx, req)
		require.NoError(t, err)
		pages++
		assert.LessOrEqual(t, p.Scanned, 10)
		for _, d := range p.DeadLetters {
			found = append(found, d.Seq)
		}
		if p.Next == 0 {
			break
		}
		assert.True(t, p.ScanLimited, "a page that ends before it is full ends on the budget")
		req.From = p.Next
	}
	assert.Equal(t, []uint64{31}, found)
	assert.Equal(t, 4, pages, "31 messages, 10 examined per page")
}

func TestCheckFilter_names_the_subject_that_works(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	_, err = q.List(ctx, dlq.PageRequest{Filter: dlq.Filter{Subject: "auth.user.created"}})
	require.ErrorIs(t, err, dlq.ErrFilterOutsideStream)
	var fe *dlq.FilterError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "dlq.auth.user.created", fe.Suggest)

	err = q.CheckFilter("dlq.>.x")
	require.ErrorIs(t, err, dlq.ErrInvalidFilter)
	assert.Equal(t, `invalid subject filter "dlq.>.x": '>' must be the last token`, err.Error())

	_, err = dlq.Open(ctx, e.srv.JS, "NOPE")
	require.ErrorIs(t, err, natsjs.ErrStreamNotFound)
}

func TestReplay_publishes_the_original_and_deletes_the_dead_letter(t *testing.T) {
	e := newEnv(t)
	ev := e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)
	raw, err := q.Get(ctx, 1)
	require.NoError(t, err)

	r, err := q.Replay(ctx, raw, dlq.ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, "auth.user.created", r.Subject)
	assert.Equal(t, "AUTH_EVENTS", r.Ack.Stream)
	assert.True(t, r.Deleted)
	assert.True(t, strings.HasPrefix(r.MsgID, "replay:DLQ:1:"), r.MsgID)
	assert.Zero(t, msgs(t, e.srv, "DLQ"))

	st, err := e.srv.JS.Stream(ctx, "AUTH_EVENTS")
	require.NoError(t, err)
	replayed, err := st.GetMsg(ctx, r.Ack.Sequence)
	require.NoError(t, err)
	for k := range replayed.Header {
		assert.False(t, strings.HasPrefix(k, "Dlq-"), "dead-letter header %s replayed", k)
	}
	_, got, err := marshaler.Default().DecodeNATS(replayed.Header, replayed.Data)
	require.NoError(t, err)
	assert.Equal(t, ev.ID, got.ID, "the event keeps its id")

	_, err = q.Get(ctx, 1)
	require.ErrorIs(t, err, dlq.ErrNotFound)
	require.ErrorIs(t, err, natsjs.ErrMsgNotFound)
}

func TestReplay_failures_keep_the_dead_letter(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, err := e.srv.JS.Publish(ctx, "dlq.manual", []byte("x"))
	require.NoError(t, err)
	e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	raw, err := q.Get(ctx, 1)
	require.NoError(t, err)
	_, err = q.Replay(ctx, raw, dlq.ReplayOptions{})
	require.ErrorIs(t, err, dlq.ErrNotDeadLetter)

	require.NoError(t, e.srv.JS.DeleteStream(ctx, "AUTH_EVENTS"))
	raw, err = q.Get(ctx, 2)
	require.NoError(t, err)
	_, err = q.Replay(ctx, raw, dlq.ReplayOptions{})
	require.ErrorIs(t, err, dlq.ErrNoTargetStream)
	var re *dlq.ReplayError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "auth.user.created", re.Target)
	assert.EqualValues(t, 2, msgs(t, e.srv, "DLQ"), "both dead letters kept")
}

func TestReplay_at_a_time_needs_schedules_on_the_original_stream(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)
	raw, err := q.Get(ctx, 1)
	require.NoError(t, err)
	_, err = q.Replay(ctx, raw, dlq.ReplayOptions{At: raw.Time.Add(time.Hour)})
	require.ErrorIs(t, err, transport.ErrSchedulesDisabled)
	var re *dlq.ReplayError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "AUTH_EVENTS", re.TargetStream)
	assert.True(t, re.Scheduled)
	assert.EqualValues(t, 1, msgs(t, e.srv, "DLQ"))
}

func TestPurge_and_Delete(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(t, "auth.user.created", "user.created", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	e.deadLetter(t, "auth.user.deleted", "user.deleted", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	e.deadLetter(t, "auth.user.deleted", "user.deleted", "org-1", middleware.ReasonMaxDeliver, errDBDown)
	ctx := testCtx(t)
	q, err := dlq.Open(ctx, e.srv.JS, "")
	require.NoError(t, err)

	by, err := q.CountBySubject(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"dlq.auth.user.created": 1, "dlq.auth.user.deleted": 2}, by)

	n, err := q.Purge(ctx, "dlq.auth.user.deleted")
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	_, err = q.Purge(ctx, "auth.user.deleted")
	require.ErrorIs(t, err, dlq.ErrFilterOutsideStream)

	require.NoError(t, q.Delete(ctx, 1))
	require.ErrorIs(t, q.Delete(ctx, 1), dlq.ErrNotFound)
	c, err := q.Count(ctx, "")
	require.NoError(t, err)
	assert.Zero(t, c)
}
