package service_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/eventstest"
)

// onServer builds the world on an embedded JetStream server: the same
// service, the same handler, the production router and publisher.
func onServer(t *testing.T, m *mailerFake) *world {
	t.Helper()
	srv := eventstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	streams := map[string]natsjs.Stream{}
	for name, subject := range map[string]string{"MY_SERVICE": "my-service.>", "DLQ": "dlq.>"} {
		s, err := srv.JS.CreateStream(ctx, natsjs.StreamConfig{Name: name, Subjects: []string{subject}})
		require.NoError(t, err)
		streams[name] = s
	}
	pub, err := events.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	r, err := events.NewRouter(srv.Conn, routerConfig())
	require.NoError(t, err)
	return &world{publisher: pub, router: r, mailer: m, messages: func(filter string) []stored {
		var out []stored
		for _, s := range streams {
			info, err := s.Info(context.Background())
			if err != nil {
				continue
			}
			for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
				msg, err := s.GetMsg(context.Background(), seq)
				if err != nil || !matches(filter, msg.Subject) {
					continue
				}
				out = append(out, stored{Subject: msg.Subject, Header: msg.Header, Data: msg.Data})
			}
		}
		return out
	}}
}

// matches is NATS subject matching for the filters the cases use ("x.y.z"
// and "x.>").
func matches(filter, subject string) bool {
	if len(filter) >= 2 && filter[len(filter)-2:] == ".>" {
		prefix := filter[:len(filter)-1]
		return len(subject) > len(prefix) && subject[:len(prefix)] == prefix
	}
	return filter == subject
}

// TestNotifier_on_the_embedded_server runs the handler cases of the memory
// bus on a real JetStream server: same handler, same outcomes.
func TestNotifier_on_the_embedded_server(t *testing.T) {
	for _, tt := range notificationCases {
		t.Run(tt.name, func(t *testing.T) {
			w := onServer(t, tt.mailer())
			w.run(t)
			tt.check(t, w)
		})
	}
}
