package service

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jetevents/events/outbox"
)

// TxService is the seed's service on its own database, without the dual
// write: CreateResource stores the resource row and publishes
// resource.created in one transaction, through the outbox (package outbox).
// The event is stored by the stream if and only if the transaction commits:
// a crash between the two writes, a publish failing after the commit, or a
// rollback after the publish cannot happen any more, because there is one
// write. A Relay (outbox.NewRelay) publishes the committed events.
//
// The seed's CreateResource is reused as it is: only its publisher changes,
// from the NATS publisher to the transaction's (outbox.Outbox.Publisher).
type TxService struct {
	db          *sql.DB
	outbox      *outbox.Outbox
	timeManager TimeManager
}

// NewTxService returns the service writing resources and their events into
// db through ob.
func NewTxService(db *sql.DB, ob *outbox.Outbox, tm TimeManager) *TxService {
	return &TxService{db: db, outbox: ob, timeManager: tm}
}

// ResourcesSchema is the resources table (both dialects read it).
const ResourcesSchema = `CREATE TABLE IF NOT EXISTS resources (
	id              text PRIMARY KEY,
	organization_id text NOT NULL,
	type            text NOT NULL
)`

// CreateResource creates the resource and publishes resource.created, in
// one transaction.
func (s *TxService) CreateResource(ctx context.Context, data *ResourceData) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := s.CreateResourceIn(ctx, tx, data); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CreateResourceIn does CreateResource's work inside the caller's
// transaction, for callers that do more in it: the resource row and its
// event commit, or roll back, with tx.
func (s *TxService) CreateResourceIn(ctx context.Context, tx *sql.Tx, data *ResourceData) error {
	resource := createResource(data)
	insert := "INSERT INTO resources (id, organization_id, type) VALUES ($1, $2, $3)"
	if s.outbox.Dialect() == outbox.SQLite {
		insert = "INSERT INTO resources (id, organization_id, type) VALUES (?, ?, ?)"
	}
	if _, err := tx.ExecContext(ctx, insert, resource.ID, data.OrganizationID, resource.Type); err != nil {
		return fmt.Errorf("store resource %s: %w", resource.ID, err)
	}
	// The seed's CreateResource, unchanged: its publisher is the
	// transaction's, so its Publish writes the event into the outbox.
	return New(s.outbox.Publisher(tx), s.timeManager).CreateResource(ctx, data)
}
