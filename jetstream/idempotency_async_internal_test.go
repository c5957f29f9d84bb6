package jetstream

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePubAck_reads_the_sequence_or_tells_the_failure(t *testing.T) {
	tests := []struct {
		name    string
		msg     *nats.Msg
		seq     uint64
		exists  bool
		wantErr string
	}{
		{"stored", &nats.Msg{Data: []byte(`{"stream":"KV_P","seq":42}`)}, 42, false, ""},
		{"stored, other field order", &nats.Msg{Data: []byte(`{"seq":7,"stream":"KV_P","domain":"x"}`)}, 7, false, ""},
		{"key exists", &nats.Msg{Data: []byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"KV_P","seq":0}`)}, 0, true, ""},
		{"key exists on a replicated bucket", &nats.Msg{Data: []byte(`{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}`)}, 0, true, ""},
		{"refused", &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, 0, false, "maximum messages exceeded"},
		{"no stream", &nats.Msg{Header: nats.Header{"Status": {"503"}}}, 0, false, "no responders"},
		{"other status", &nats.Msg{Header: nats.Header{"Status": {"408"}, "Description": {"Request Timeout"}}}, 0, false, "status 408 Request Timeout"},
		{"malformed", &nats.Msg{Data: []byte(`{"seq":`)}, 0, false, "malformed acknowledgement"},
		{"no sequence", &nats.Msg{Data: []byte(`{"stream":"KV_P"}`)}, 0, false, "without a sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, err := parsePubAck(tt.msg)
			assert.Equal(t, tt.seq, seq)
			switch {
			case tt.exists:
				assert.True(t, errors.Is(err, errKVKeyExists), "%v", err)
			case tt.wantErr != "":
				require.Error(t, err)
				assert.False(t, errors.Is(err, errKVKeyExists))
				assert.Contains(t, err.Error(), tt.wantErr)
			default:
				assert.NoError(t, err)
			}
		})
	}
}
