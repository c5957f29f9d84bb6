package marshaler_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
)

var _ cqrs.CommandEventMarshaler = marshaler.CQRS{}

// UserCreated gets its type from its name: "user.created".
type UserCreated struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
}

// RoleAssigned names its own type.
type RoleAssigned struct {
	UserID int64  `json:"user_id"`
	Role   string `json:"role"`
}

func (RoleAssigned) EventType() string { return "user.role.updated" }

// ptrTyped names its type with a pointer receiver.
type ptrTyped struct{}

func (*ptrTyped) EventType() string { return "ptr.typed" }

type HTTPRequestFailed struct{}
type OrderV2Placed struct{}
type UserIDChanged struct{}
type Legacy_event_Name struct{}
type Generic[T any] struct{ V T }

func TestCQRS_Name_naming_rule(t *testing.T) {
	c := marshaler.CQRS{}
	tests := []struct {
		v    any
		want string
	}{
		{UserCreated{}, "user.created"},
		{&UserCreated{}, "user.created"},
		{HTTPRequestFailed{}, "http.request.failed"},
		{OrderV2Placed{}, "order.v2.placed"},
		{UserIDChanged{}, "user.id.changed"},
		{Legacy_event_Name{}, "legacy.event.name"},
		{Generic[int]{}, "generic"},
		{RoleAssigned{}, "user.role.updated"},
		{&RoleAssigned{}, "user.role.updated"},
		{(*RoleAssigned)(nil), "user.role.updated"},
		{ptrTyped{}, "ptr.typed"},
		{&ptrTyped{}, "ptr.typed"},
		{struct{}{}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, c.Name(tt.v), "%T", tt.v)
		assert.Equal(t, tt.want, marshaler.EventTypeOf(tt.v), "%T", tt.v)
	}
}

func cqrsMarshaler(t *testing.T, clock envelope.Clock) marshaler.CQRS {
	t.Helper()
	m := mustNew(t, marshaler.Config{Source: "auth-service", OrganizationID: "org-default", Clock: clock})
	return marshaler.CQRS{Marshaler: m, HandledMessage: cqrs.OriginalMessageFromCtx}
}

func TestCQRS_Marshal_builds_a_full_envelope(t *testing.T) {
	clock := eventstest.NewClock(time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC))
	c := cqrsMarshaler(t, clock)

	msg, err := c.Marshal(&UserCreated{UserID: 9007199254740993, Email: "user@example.com"})
	require.NoError(t, err)

	e, err := c.FromMessage(msg)
	require.NoError(t, err)
	assert.Equal(t, e.ID, msg.UUID)
	assert.Equal(t, "user.created", e.Type)
	assert.Equal(t, "auth-service", e.Source)
	assert.Equal(t, "org-default", e.OrganizationID)
	assert.Equal(t, clock.Now(), e.Timestamp, "stamped by the configured clock")
	assert.Equal(t, "1.0", e.SchemaVersion)
	assert.JSONEq(t, `{"user_id":9007199254740993,"email":"user@example.com"}`, string(e.Data))
	assert.Equal(t, "user.created", c.NameFromMessage(msg))

	var back UserCreated
	require.NoError(t, c.Unmarshal(msg, &back))
	assert.Equal(t, UserCreated{UserID: 9007199254740993, Email: "user@example.com"}, back)

	// The same message goes over NATS and decodes on the other side.
	nm, err := c.Marshaler.Marshal("auth.user.created", msg)
	require.NoError(t, err)
	wm, got, err := marshaler.Default().DecodeNATS(nm.Header, nm.Data)
	require.NoError(t, err)
	assert.Equal(t, e, got)
	var overWire UserCreated
	require.NoError(t, c.Unmarshal(wm, &overWire))
	assert.Equal(t, back, overWire)
}

func TestCQRS_Marshal_failures_are_typed(t *testing.T) {
	c := cqrsMarshaler(t, envelope.SystemClock{})

	_, err := marshaler.CQRS{Marshaler: marshaler.Default()}.Marshal(&UserCreated{})
	assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
	assert.ErrorIs(t, err, envelope.ErrMissingSource, "Config.Source is required")

	_, err = c.Marshal(struct{ A int }{1})
	assert.ErrorIs(t, err, envelope.ErrMissingType, "an unnamed type has no event type")

	_, err = c.Marshal(&Generic[chan int]{V: make(chan int)})
	assert.ErrorIs(t, err, envelope.ErrDataNotJSON)

	_, err = marshaler.CQRS{}.Marshal(&UserCreated{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	assert.ErrorIs(t, marshaler.CQRS{}.Unmarshal(message.NewMessage("1", nil), &UserCreated{}), envelope.ErrInvalidConfig)
}

func TestCQRS_Unmarshal_failures_are_typed(t *testing.T) {
	c := cqrsMarshaler(t, envelope.SystemClock{})
	msg, err := c.Marshal(&RoleAssigned{UserID: 1, Role: "admin"})
	require.NoError(t, err)

	var wrong struct {
		Role int `json:"role"`
	}
	err = c.Unmarshal(msg, &wrong)
	assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
	assert.ErrorIs(t, err, envelope.ErrDataDecode)

	err = c.Unmarshal(message.NewMessage("1", []byte("not json")), &RoleAssigned{})
	assert.ErrorIs(t, err, marshaler.ErrUnmarshal)
	assert.ErrorIs(t, err, envelope.ErrMalformed)
}

func TestCQRS_NameFromMessage_reads_the_payload_without_metadata(t *testing.T) {
	c := cqrsMarshaler(t, envelope.SystemClock{})
	assert.Equal(t, "user.created", c.NameFromMessage(message.NewMessage("1", []byte(seedPayload))))
	assert.Equal(t, "", c.NameFromMessage(message.NewMessage("1", []byte("junk"))))
}

func TestCQRS_Stamp_reads_the_context(t *testing.T) {
	c := cqrsMarshaler(t, envelope.SystemClock{})
	msg, err := c.Marshal(&UserCreated{UserID: 1})
	require.NoError(t, err)
	ctx := envelope.WithCorrelationID(context.Background(), "corr-ctx")
	ctx = envelope.WithCausationID(ctx, "cause-ctx")
	ctx = envelope.WithOrganizationID(ctx, "org-ctx")
	msg.SetContext(ctx)

	require.NoError(t, c.Stamp(msg))
	assert.Equal(t, marshaler.Relations{CorrelationID: "corr-ctx", CausationID: "cause-ctx"}, marshaler.RelationsFromMessage(msg))
	e, err := c.FromMessage(msg)
	require.NoError(t, err)
	assert.Equal(t, "org-ctx", e.OrganizationID, "the payload is rewritten")
	assert.Equal(t, "org-ctx", msg.Metadata.Get(marshaler.MetadataOrganization))

	// Metadata already set wins over the context.
	msg2, err := c.Marshal(&UserCreated{UserID: 2})
	require.NoError(t, err)
	marshaler.SetRelations(msg2, marshaler.Relations{CorrelationID: "explicit"})
	msg2.SetContext(ctx)
	require.NoError(t, c.Stamp(msg2))
	assert.Equal(t, "explicit", marshaler.RelationsFromMessage(msg2).CorrelationID)

	// Not an envelope: the organization cannot be rewritten.
	junk := message.NewMessage("1", []byte("junk"))
	junk.SetContext(ctx)
	assert.ErrorIs(t, c.Stamp(junk), marshaler.ErrNotAnEvent)
}

// TestCQRS_event_bus_and_processor_over_gochannel runs watermill's real CQRS
// EventBus and EventProcessor on the in-memory gochannel pub/sub: a struct
// published on the bus arrives as the struct, the wire message is a valid
// envelope, and an event published while handling another carries the
// correlation, causation and organization of the one handled.
func TestCQRS_event_bus_and_processor_over_gochannel(t *testing.T) {
	logger := watermill.NopLogger{}
	clock := eventstest.NewClock(time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC))
	c := cqrsMarshaler(t, clock)
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	t.Cleanup(func() { _ = pubSub.Close() })

	bus, err := cqrs.NewEventBusWithConfig(pubSub, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) { return p.EventName, nil },
		OnPublish:            func(p cqrs.OnEventSendParams) error { return c.Stamp(p.Message) },
		Marshaler:            c,
		Logger:               logger,
	})
	require.NoError(t, err)

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	require.NoError(t, err)
	processor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) { return p.EventName, nil },
		SubscriberConstructor: func(cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return pubSub, nil
		},
		Marshaler: c,
		Logger:    logger,
	})
	require.NoError(t, err)

	gotUser := make(chan *UserCreated, 1)
	gotRole := make(chan *RoleAssigned, 1)
	require.NoError(t, processor.AddHandlers(
		cqrs.NewEventHandler("grant-default-role", func(ctx context.Context, e *UserCreated) error {
			gotUser <- e
			clock.Advance(time.Second)
			return bus.Publish(ctx, &RoleAssigned{UserID: e.UserID, Role: "member"})
		}),
		cqrs.NewEventHandler("record-role", func(ctx context.Context, e *RoleAssigned) error {
			gotRole <- e
			return nil
		}),
	))

	// Raw subscribers see the wire messages.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rawUser, err := pubSub.Subscribe(ctx, "user.created")
	require.NoError(t, err)
	rawRole, err := pubSub.Subscribe(ctx, "user.role.updated")
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-routerDone:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("router did not stop")
		}
	})
	select {
	case <-router.Running():
	case <-ctx.Done():
		t.Fatal("router did not start")
	}

	pubCtx := envelope.WithOrganizationID(context.Background(), "org-42")
	require.NoError(t, bus.Publish(pubCtx, UserCreated{UserID: 9007199254740993, Email: "user@example.com"}))

	user := receive(t, ctx, gotUser)
	assert.Equal(t, &UserCreated{UserID: 9007199254740993, Email: "user@example.com"}, user)
	role := receive(t, ctx, gotRole)
	assert.Equal(t, &RoleAssigned{UserID: 9007199254740993, Role: "member"}, role)

	// The wire messages are full, valid envelopes.
	m := marshaler.Default()
	userMsg := receive(t, ctx, rawUser)
	userMsg.Ack()
	userEvent, err := m.FromMessage(userMsg)
	require.NoError(t, err)
	assert.Equal(t, "user.created", userEvent.Type)
	assert.Equal(t, "auth-service", userEvent.Source)
	assert.Equal(t, "org-42", userEvent.OrganizationID, "from the publish context")
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), userEvent.Timestamp)
	assert.Equal(t, userEvent.ID, userMsg.UUID)

	roleMsg := receive(t, ctx, rawRole)
	roleMsg.Ack()
	roleEvent, err := m.FromMessage(roleMsg)
	require.NoError(t, err)
	assert.Equal(t, "user.role.updated", roleEvent.Type)
	assert.Equal(t, "org-42", roleEvent.OrganizationID, "inherited from the event handled")
	assert.Equal(t, time.Date(2024, 1, 15, 10, 30, 46, 0, time.UTC), roleEvent.Timestamp)
	assert.Equal(t, marshaler.Relations{CorrelationID: userEvent.ID, CausationID: userEvent.ID}, marshaler.RelationsFromMessage(roleMsg),
		"published while handling user.created: caused by it, in its conversation")

	// And over NATS, the relations become headers.
	nm, err := m.Marshal("auth.user.role.updated", roleMsg)
	require.NoError(t, err)
	assert.Equal(t, userEvent.ID, nm.Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, userEvent.ID, nm.Header.Get(marshaler.HeaderCausationID))
}

func TestCQRS_command_bus_OnSend_stamps_commands(t *testing.T) {
	logger := watermill.NopLogger{}
	c := cqrsMarshaler(t, envelope.SystemClock{})
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	t.Cleanup(func() { _ = pubSub.Close() })
	bus, err := cqrs.NewCommandBusWithConfig(pubSub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) { return p.CommandName, nil },
		OnSend:               func(p cqrs.CommandBusOnSendParams) error { return c.Stamp(p.Message) },
		Marshaler:            c,
		Logger:               logger,
	})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := pubSub.Subscribe(ctx, "grant.role")
	require.NoError(t, err)

	sendCtx := envelope.WithCorrelationID(ctx, "corr-cmd")
	require.NoError(t, bus.Send(sendCtx, &GrantRole{UserID: 7}))

	msg := receive(t, ctx, raw)
	msg.Ack()
	e, err := c.FromMessage(msg)
	require.NoError(t, err)
	assert.Equal(t, "grant.role", e.Type)
	assert.Equal(t, "corr-cmd", marshaler.RelationsFromMessage(msg).CorrelationID)
	var cmd GrantRole
	require.NoError(t, c.Unmarshal(msg, &cmd))
	assert.Equal(t, GrantRole{UserID: 7}, cmd)
}

type GrantRole struct {
	UserID int `json:"user_id"`
}

func receive[T any](t *testing.T, ctx context.Context, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("nothing received: %v", ctx.Err())
		var zero T
		return zero
	}
}
