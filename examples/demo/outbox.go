package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the "sqlite" driver: pure Go, nothing to install

	events "github.com/jetevents/events"
	"github.com/jetevents/events/examples/service"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/outbox"
)

// outboxStep runs the seed's service on its own SQLite database with the
// outbox: CreateResource stores the resource and writes its event in one
// transaction; a relay publishes what committed. A second resource is
// created in a transaction that then rolls back: neither its row nor its
// event ever appears.
func outboxStep(ctx context.Context, say func(string, ...any), nc *nats.Conn, js natsjs.JetStream) error {
	dir, err := os.MkdirTemp("", "jetevents-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "my-service.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, service.ResourcesSchema); err != nil {
		return err
	}
	ob, err := outbox.New(db, outbox.Config{})
	if err != nil {
		return err
	}
	if err := ob.CreateSchema(ctx); err != nil {
		return err
	}
	if _, err := jetstream.Apply(ctx, js, jetstream.StreamSpec{Name: "MY_SERVICE", Subjects: []string{"my-service.>"}}); err != nil {
		return err
	}
	say("8. outbox: the seed's CreateResource on its own SQLite database (%s), stream MY_SERVICE on my-service.>", path)

	svc := service.NewTxService(db, ob, events.SystemClock{})
	if err := svc.CreateResource(ctx, &service.ResourceData{OrganizationID: "org-123", Type: "bucket"}); err != nil {
		return fmt.Errorf("create resource: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := svc.CreateResourceIn(ctx, tx, &service.ResourceData{OrganizationID: "org-456", Type: "bucket"}); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("create resource: %w", err)
	}
	_, pendingBefore, _, err := ob.Backlog(ctx) // the open transaction's row is not visible
	if err != nil {
		return err
	}
	if err := tx.Rollback(); err != nil { // as when a later step of the request fails
		return err
	}
	say("   committed:   resource res-org-123 and its resource.created event, in one transaction (%d event waiting in the outbox)", pendingBefore)
	say("   rolled back: resource res-org-456 and its event, in one transaction")

	pub, err := events.NewPublisher(nc)
	if err != nil {
		return err
	}
	defer pub.Close()
	relay, err := outbox.NewRelay(ob, pub, outbox.RelayConfig{PollMax: 50 * time.Millisecond, Logger: watermill.NopLogger{}})
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	stream, err := js.Stream(ctx, "MY_SERVICE")
	if err != nil {
		stopRelay()
		return err
	}
	msg, err := getMsg(ctx, stream, 1)
	stopRelay()
	if rerr := <-relayDone; err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("relayed event: %w", err)
	}
	var e events.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil {
		return err
	}
	data, _ := e.DataMap()
	say("   relay published: %s seq %d  type=%s id=%s resource_id=%v (Nats-Msg-Id = event id)", msg.Subject, msg.Sequence, e.Type, e.ID, data["resource_id"])

	var ids []string
	rows, err := db.QueryContext(ctx, "SELECT id FROM resources ORDER BY id")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	_, pending, _, err := ob.Backlog(ctx)
	if err != nil {
		return err
	}
	if len(ids) != 1 || info.State.Msgs != 1 || pending != 0 {
		return errors.New("outbox: the database and the stream disagree")
	}
	say("   resources table: [%s]; MY_SERVICE holds %d event; outbox pending: %d. Rolled back, res-org-456 is in neither.",
		strings.Join(ids, " "), info.State.Msgs, pending)
	return nil
}
