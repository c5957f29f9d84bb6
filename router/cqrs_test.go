package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// UserCreated is published through the CQRS bus; its event name is
// user.created, its subject auth.user.created.
type UserCreated struct {
	UserID int64  `json:"user_id"`
	Email  string `json:"email"`
}

// RoleAssigned names its own type.
type RoleAssigned struct {
	UserID int64  `json:"user_id"`
	Role   string `json:"role"`
}

func (RoleAssigned) EventType() string { return "user.role.assigned" }

func cqrsBus(t *testing.T, f fixture) (*cqrs.EventBus, marshaler.CQRS) {
	t.Helper()
	m, err := marshaler.New(marshaler.Config{Source: "auth-service", OrganizationID: "org-default",
		Clock: eventstest.NewClock(time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC))})
	require.NoError(t, err)
	c := marshaler.CQRS{Marshaler: m}
	bus, err := router.NewEventBus(f.messagePublisher(t), router.EventBusConfig{Marshaler: c, SubjectPrefix: "auth"})
	require.NoError(t, err)
	return bus, c
}

type seenEvent struct {
	Subject, CorrelationID, CausedBy, Organization, ID string
	Original                                           bool // cqrs.OriginalMessageFromCtx found the message
}

func TestRouter_CQRS_event_published_on_the_bus_is_handled_in_a_router_group_and_its_follow_up_is_correlated(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			bus, _ := cqrsBus(t, f)
			r := f.newRouter(t, suiteConfig())
			var mu sync.Mutex
			var users []UserCreated
			var roles []RoleAssigned
			seen := map[string]seenEvent{}
			done := make(chan struct{})
			record := func(ctx context.Context, typ string) {
				d, _ := router.DeliveryFrom(ctx)
				orig := cqrs.OriginalMessageFromCtx(ctx)
				s := seenEvent{Subject: d.Subject, CorrelationID: d.CorrelationID, CausedBy: d.CausedBy, Original: orig != nil}
				if orig != nil {
					s.Organization, s.ID = orig.Metadata.Get(marshaler.MetadataOrganization), orig.UUID
				}
				seen[typ] = s
			}
			router.HandleEvent(r.Group("roles", router.EventSubject("auth", UserCreated{})), func(ctx context.Context, e *UserCreated) error {
				mu.Lock()
				users = append(users, *e)
				record(ctx, "user.created")
				mu.Unlock()
				return bus.Publish(ctx, &RoleAssigned{UserID: e.UserID, Role: "member"})
			})
			router.AddEventHandler(r.Group("audit", "auth.user.role.assigned"), cqrs.NewEventHandler("audit-roles", func(ctx context.Context, e *RoleAssigned) error {
				mu.Lock()
				roles = append(roles, *e)
				record(ctx, "user.role.assigned")
				mu.Unlock()
				close(done)
				return nil
			}))
			start(t, r)

			ctx := envelope.WithOrganizationID(envelope.WithCorrelationID(ctxT(t), "request-1"), "org-42")
			require.NoError(t, bus.Publish(ctx, UserCreated{UserID: 9007199254740993, Email: "a@example.com"}))
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("follow-up event not handled")
			}
			waitIdle(t, f, "roles")
			waitIdle(t, f, "audit")
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []UserCreated{{UserID: 9007199254740993, Email: "a@example.com"}}, users, "decoded into the struct, ints exact")
			assert.Equal(t, []RoleAssigned{{UserID: 9007199254740993, Role: "member"}}, roles)
			first := seen["user.created"]
			require.NotEmpty(t, first.ID)
			assert.Equal(t, seenEvent{Subject: "auth.user.created", CorrelationID: "request-1", Organization: "org-42", ID: first.ID, Original: true}, first)
			second := seen["user.role.assigned"]
			assert.Equal(t, "auth.user.role.assigned", second.Subject, "generated topic: prefix + event name")
			assert.Equal(t, "request-1", second.CorrelationID, "the conversation continues through OnPublish")
			assert.Equal(t, first.ID, second.CausedBy, "caused by the event handled")
			assert.Equal(t, "org-42", second.Organization, "the organization of the event handled")
			assert.Equal(t, router.Stats{Handled: 2}, r.Stats())
		})
	}
}

func TestRouter_CQRS_failing_handler_is_retried_then_dead_lettered_like_any_other(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := fx.make(t)
			bus, _ := cqrsBus(t, f)
			r := f.newRouter(t, suiteConfig()) // MaxDeliver 4
			var mu sync.Mutex
			var attempts []uint64
			router.HandleEvent(r.Group("roles", router.EventSubject("auth", UserCreated{})), func(ctx context.Context, e *UserCreated) error {
				d, _ := router.DeliveryFrom(ctx)
				mu.Lock()
				attempts = append(attempts, d.Attempt)
				mu.Unlock()
				return errors.New("directory unavailable")
			})
			start(t, r)
			require.NoError(t, bus.Publish(ctxT(t), &UserCreated{UserID: 1}))
			dl := waitDead(t, f, 1)
			waitIdle(t, f, "roles")
			mu.Lock()
			assert.Equal(t, []uint64{1, 2, 3, 4}, attempts)
			mu.Unlock()
			h := dl[0].Header
			assert.Equal(t, "dlq.auth.user.created", dl[0].Subject)
			assert.Equal(t, middleware.ReasonMaxDeliver, h.Get(middleware.HeaderReason))
			assert.Equal(t, "roles", h.Get(middleware.HeaderConsumer))
			assert.Equal(t, "4", h.Get(middleware.HeaderDeliveries))
			assert.Contains(t, h.Get(middleware.HeaderError), "directory unavailable")
			assert.Equal(t, "user.created", h.Get("ce-type"))
			assert.Equal(t, "auth-service", h.Get("ce-source"))
		})
	}
}

func TestRouter_CQRS_data_that_does_not_fit_the_struct_is_dead_lettered_as_unmarshal(t *testing.T) {
	f := newMemFixture(t)
	r := f.newRouter(t, suiteConfig())
	called := false
	router.HandleEvent(r.Group("roles", "auth.user.created"), func(context.Context, *UserCreated) error {
		called = true
		return nil
	})
	start(t, r)
	require.NoError(t, f.publish(ctxT(t), "auth.user.created", event("evt-misfit", "user.created", map[string]any{"user_id": "not a number"})))
	dl := waitDead(t, f, 1)
	waitIdle(t, f, "roles")
	assert.False(t, called)
	assert.Equal(t, middleware.ReasonUnmarshal, dl[0].Header.Get(middleware.HeaderReason))
}

func TestRouter_CQRS_helpers_refuse_what_cannot_work(t *testing.T) {
	f := newMemFixture(t)
	_, err := router.NewEventBus(f.messagePublisher(t), router.EventBusConfig{Marshaler: marshaler.CQRS{Marshaler: marshaler.Default()}})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig, "no Source")
	_, err = router.NewEventBus(nil, router.EventBusConfig{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	r := f.newRouter(t, suiteConfig())
	g := router.AddEventHandler(r.Group("g", "auth.>"), badHandler{})
	assert.ErrorIs(t, g.Err(), envelope.ErrInvalidConfig)
	assert.Equal(t, "auth.user.created", router.EventSubject("auth", &UserCreated{}))
	assert.Equal(t, "user.role.assigned", router.EventSubject("", RoleAssigned{}))
}

// badHandler's NewEvent is not a pointer.
type badHandler struct{}

func (badHandler) HandlerName() string               { return "bad" }
func (badHandler) NewEvent() any                     { return UserCreated{} }
func (badHandler) Handle(context.Context, any) error { return nil }
