package idempotency_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/idempotency"
)

// Stores keep records as Encode writes them and read them with
// ParseRecord: Encode (written without reflection) must stay what
// encoding/json writes for the record, so that records written before and
// after it are alike.
func TestRecord_encode_is_what_encoding_json_writes(t *testing.T) {
	until := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	records := []idempotency.Record{
		idempotency.ClaimRecord(idempotency.Holder{Stream: "AUTH_EVENTS", StreamSeq: 12345, Attempt: 2}, until),
		idempotency.DoneRecord(idempotency.Holder{Stream: "AUTH_EVENTS", StreamSeq: 1, Attempt: 1}),
		idempotency.DoneRecord(idempotency.Holder{}),
		idempotency.ClaimRecord(idempotency.Holder{}, until),
		idempotency.ClaimRecord(idempotency.Holder{Stream: `odd "stream" <&> \ é` + "\x01\u2028", StreamSeq: 1<<64 - 1, Attempt: 1<<64 - 1}, time.Unix(0, -1)),
	}
	for _, r := range records {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(r.Encode()))
		back, err := idempotency.ParseRecord("k", r.Encode())
		require.NoError(t, err)
		assert.Equal(t, r, back)
	}
}
