package outbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
)

// errNoListen: the database's driver gives no access to notifications.
var errNoListen = errors.New("the driver is not jackc/pgx's stdlib: no LISTEN, polling")

// listen LISTENs on the outbox's channel on a connection of its own and
// pokes Run at every notification (Publish's pg_notify, delivered when its
// transaction commits), until ctx ends. A lost connection is re-established
// with backoff; meanwhile Run polls. Why pgx itself: database/sql has no
// notion of notifications, and pgx's stdlib driver lends its *pgx.Conn
// (Conn.Raw) for WaitForNotification. Any other driver: the relay polls.
func (r *Relay) listen(ctx context.Context) {
	var attempt uint64
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		r.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNoListen) {
			r.log.Info("Outbox relay polls: "+err.Error(), watermill.LogFields{"poll_max": r.cfg.PollMax.String()})
			return
		}
		attempt++
		delay := r.cfg.Backoff.Delay(attempt)
		r.log.Info("Outbox relay lost its LISTEN connection, polling until it is back", watermill.LogFields{"error": err, "retry_in": delay.String()})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	conn, err := r.o.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var listenErr error
	_ = conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			listenErr = errNoListen
			return nil
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, `LISTEN "`+r.o.channel()+`"`); err != nil {
			listenErr = err
			return driver.ErrBadConn
		}
		r.listening.Store(true)
		r.poke() // rows committed before LISTEN took effect
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				listenErr = err
				// Still LISTENing: never back to the pool.
				return driver.ErrBadConn
			}
			r.poke()
		}
	})
	return listenErr
}
