package events_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/jetevents/events"

// deps lists the packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	require.NoError(t, err, "go list -deps %s: %s", pkg, out)
	return strings.Fields(string(out))
}

// TestLayering_follows_the_package_map guards the layers of the README's package map: production
// packages never link nats-server (only tests, examples, the command and
// embedded do), no subpackage imports the root facade, and each layer
// imports only the layers below it.
func TestLayering_follows_the_package_map(t *testing.T) {
	tests := []struct {
		pkg     string
		mayUse  []string // packages of this module it may import
		noNatsd bool
	}{
		{module, []string{"envelope", "marshaler", "transport", "jetstream", "middleware", "router", "eventsmock"}, true},
		{module + "/envelope", nil, true},
		{module + "/marshaler", []string{"envelope"}, true},
		{module + "/transport", []string{"envelope"}, true},
		{module + "/jetstream", []string{"envelope", "marshaler", "transport"}, true},
		{module + "/memory", []string{"envelope", "marshaler", "transport"}, true},
		// Middleware reads the transport's delivery view, never a *nats.Conn
		// or the jetstream package.
		{module + "/middleware", []string{"envelope", "marshaler", "transport"}, true},
		{module + "/router", []string{"envelope", "marshaler", "transport", "jetstream", "middleware"}, true},
		{module + "/eventsmock", []string{"envelope"}, true},
		// Observability sits beside the root facade, above router: the
		// router and the layers below never link Prometheus or the SDK.
		{module + "/metrics", []string{"envelope", "marshaler", "transport", "jetstream", "middleware", "router"}, true},
		{module + "/tracing", []string{"envelope", "marshaler", "transport", "jetstream", "middleware", "router"}, true},
		// The service's database: beside the facade, above the publisher
		// (outbox) and the router (inbox).
		{module + "/outbox", []string{"envelope", "marshaler", "transport", "jetstream", "middleware", "internal/sqldb"}, true},
		{module + "/inbox", []string{"envelope", "marshaler", "transport", "jetstream", "middleware", "router", "internal/sqldb"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			allowed := map[string]bool{tt.pkg: true}
			for _, p := range tt.mayUse {
				allowed[module+"/"+p] = true
			}
			for _, d := range deps(t, tt.pkg) {
				if tt.noNatsd {
					assert.False(t, strings.HasPrefix(d, "github.com/nats-io/nats-server"), "%s links %s", tt.pkg, d)
				}
				if d == module || strings.HasPrefix(d, module+"/") {
					assert.True(t, allowed[d], "%s imports %s", tt.pkg, d)
				}
			}
		})
	}
}

// TestLayering_database_drivers_stay_with_the_outbox: a service that uses
// neither the outbox nor the inbox links no database driver code (pgx,
// modernc.org/sqlite); the outbox links pgx for LISTEN only, and neither
// package registers a database/sql driver (that is the service's import).
func TestLayering_database_drivers_stay_with_the_outbox(t *testing.T) {
	for _, pkg := range []string{module, "router", "jetstream", "middleware", "metrics", "tracing", "memory", "marshaler"} {
		if pkg != module {
			pkg = module + "/" + pkg
		}
		for _, d := range deps(t, pkg) {
			assert.False(t, strings.HasPrefix(d, "github.com/jackc/") || strings.HasPrefix(d, "modernc.org/"), "%s links %s", pkg, d)
		}
	}
	for _, pkg := range []string{module + "/outbox", module + "/inbox"} {
		for _, d := range deps(t, pkg) {
			assert.NotEqual(t, "github.com/jackc/pgx/v5/stdlib", d, "%s registers the pgx driver", pkg)
			assert.False(t, strings.HasPrefix(d, "modernc.org/sqlite"), "%s links %s", pkg, d)
		}
	}
}
