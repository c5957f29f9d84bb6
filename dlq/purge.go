package dlq

import (
	"context"
	"encoding/json"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Purge removes the dead letters on subject ("" for all) and returns how
// many the server removed (dead letters may arrive between a listing and
// the purge: this is what was actually removed). It sends the stream purge
// request itself because nats.go's Stream.Purge drops the server's count.
// A request without a deadline in ctx waits for js's default timeout.
func (q *Queue) Purge(ctx context.Context, subject string) (uint64, error) {
	if err := q.CheckFilter(subject); err != nil {
		return 0, err
	}
	var body []byte
	if subject != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"filter": subject}); err != nil {
			return 0, err
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.js.Options().DefaultTimeout)
		defer cancel()
	}
	reply, err := q.js.Conn().RequestWithContext(ctx, q.apiPrefix+"STREAM.PURGE."+q.name, body)
	if err != nil {
		return 0, fmt.Errorf("dlq: purging %s: %w", q.name, err)
	}
	var resp struct {
		Success bool             `json:"success"`
		Purged  uint64           `json:"purged"`
		Error   *natsjs.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, fmt.Errorf("%w: the server's answer to the purge of %s is not JSON: %w", ErrPurge, q.name, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("dlq: purging %s: %w", q.name, resp.Error)
	}
	if !resp.Success {
		return 0, fmt.Errorf("%w: the server did not confirm the purge of %s", ErrPurge, q.name)
	}
	return resp.Purged, nil
}
