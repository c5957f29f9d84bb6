package events_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// imports lists the packages the non-test Go files of dir import directly,
// by file.
func imports(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	out := map[string][]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[filepath.Base(f)] = append(out[filepath.Base(f)], p)
		}
	}
	return out
}

// broker reports whether an import path is broker code: nats.go, or the
// module's jetstream transport.
func broker(p string) bool {
	return strings.HasPrefix(p, "github.com/nats-io/") || p == module+"/jetstream"
}

// TestLayering_follows_the_package_map guards the layers of the README's
// package map: production packages never link nats-server (only tests,
// examples, the command and embedded do), no subpackage imports the root
// facade, and each layer imports only the layers below it.
func TestLayering_follows_the_package_map(t *testing.T) {
	low := []string{"envelope", "marshaler", "transport", "partition", "internal/logs"}
	with := func(more ...string) []string { return append(append([]string(nil), low...), more...) }
	tests := []struct {
		pkg    string
		mayUse []string // packages of this module it may import
	}{
		{module, with("jetstream", "middleware", "router", "eventsmock", "idempotency", "internal/consume")},
		{module + "/envelope", nil},
		{module + "/internal/logs", nil},
		{module + "/marshaler", []string{"envelope"}},
		{module + "/transport", []string{"envelope"}},
		{module + "/partition", []string{"envelope"}},
		{module + "/idempotency", []string{"envelope"}},
		{module + "/internal/consume", []string{"envelope", "transport", "internal/logs"}},
		// The transports: broker code lives here, and only here.
		{module + "/jetstream", with("idempotency")},
		{module + "/memory", with()},
		// Middleware reads the transport's delivery view, never a
		// *nats.Conn or the jetstream package (checked by file below too).
		{module + "/middleware", with("idempotency")},
		{module + "/subscriber", with("internal/consume")},
		{module + "/router", with("jetstream", "middleware", "idempotency", "internal/consume")},
		{module + "/eventsmock", []string{"envelope", "transport"}},
		// Observability sits beside the root facade, above router: the
		// router and the layers below never link Prometheus or the SDK.
		{module + "/metrics", with("jetstream", "middleware", "router", "idempotency", "internal/consume")},
		{module + "/tracing", with("jetstream", "middleware", "router", "idempotency", "internal/consume")},
		// The service's database: beside the facade, above the publisher
		// (outbox) and the router (inbox).
		{module + "/outbox", with("jetstream", "middleware", "idempotency", "internal/sqldb")},
		{module + "/inbox", with("jetstream", "middleware", "router", "idempotency", "internal/consume", "internal/sqldb")},
		// Operators' tools: the dead-letter logic (shared by jetevents dlq
		// and the console) over the transport, and the console above the
		// router (its Health) beside the facade. Neither links a database
		// driver (the outbox's backlog is a func the host passes).
		{module + "/dlq", with("jetstream", "middleware", "idempotency")},
		{module + "/console", with("jetstream", "middleware", "router", "dlq", "idempotency", "internal/consume")},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			allowed := map[string]bool{tt.pkg: true}
			for _, p := range tt.mayUse {
				allowed[module+"/"+p] = true
			}
			for _, d := range deps(t, tt.pkg) {
				assert.False(t, strings.HasPrefix(d, "github.com/nats-io/nats-server"), "%s links %s", tt.pkg, d)
				if d == module || strings.HasPrefix(d, module+"/") {
					assert.True(t, allowed[d], "%s imports %s", tt.pkg, d)
				}
			}
		})
	}
}

// TestLayering_broker_code_only_in_transports: no file of middleware,
// subscriber, idempotency or internal/consume imports nats.go or the
// jetstream package, and in router only nats.go (the file of New, the
// constructor on a *nats.Conn) does.
func TestLayering_broker_code_only_in_transports(t *testing.T) {
	allowed := map[string]string{"router": "nats.go"}
	for _, dir := range []string{"middleware", "subscriber", "idempotency", "internal/consume", "router"} {
		for file, ims := range imports(t, dir) {
			for _, im := range ims {
				if broker(im) {
					assert.Equal(t, allowed[dir], file, "%s/%s imports %s: broker code belongs in a transport", dir, file, im)
				}
			}
		}
	}
}

// TestLayering_transport_seam_knows_no_jetstream_api: the seam describes
// messages as NATS carries them (*nats.Msg headers for the publish options
// both transports share) but never talks to a server.
func TestLayering_transport_seam_knows_no_jetstream_api(t *testing.T) {
	for file, ims := range imports(t, "transport") {
		for _, im := range ims {
			assert.False(t, strings.HasPrefix(im, "github.com/nats-io/nats.go/jetstream") || im == module+"/jetstream", "transport/%s imports %s", file, im)
		}
	}
}

// TestLayering_check_fails_on_a_violation shows that the file check above
// can fail: a middleware file that imports nats.go is reported.
func TestLayering_check_fails_on_a_violation(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFile(filepath.Join(dir, "bad.go"), "package middleware\n\nimport _ \"github.com/nats-io/nats.go\"\n"))
	found := false
	for _, ims := range imports(t, dir) {
		for _, im := range ims {
			found = found || broker(im)
		}
	}
	assert.True(t, found, "a nats.go import in a scratch middleware file is caught")
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// TestLayering_database_drivers_stay_with_the_outbox: a service that uses
// neither the outbox nor the inbox links no database driver code (pgx,
// modernc.org/sqlite); the outbox links pgx for LISTEN only, and neither
// package registers a database/sql driver (that is the service's import).
func TestLayering_database_drivers_stay_with_the_outbox(t *testing.T) {
	for _, pkg := range []string{module, "router", "jetstream", "middleware", "metrics", "tracing", "memory", "marshaler", "dlq", "console"} {
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
