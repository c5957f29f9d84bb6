package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// natsConfig makes an empty $XDG_CONFIG_HOME for one test and returns a
// function that writes nats CLI context files into it.
func natsConfig(t *testing.T) (writeContext func(name string, ctx map[string]any), selectContext func(name string)) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	dir := filepath.Join(home, "nats", "context")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	writeContext = func(name string, ctx map[string]any) {
		b, err := json.Marshal(ctx)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), b, 0o600))
	}
	selectContext = func(name string) {
		require.NoError(t, os.WriteFile(filepath.Join(home, "nats", "context.txt"), []byte(name+"\n"), 0o600))
	}
	return writeContext, selectContext
}

// TestContexts_reuse_the_nats_CLIs_connection_settings: an operator who has
// `nats context add prod ...` connects with -context prod, $NATS_CONTEXT or
// the context `nats context select` chose, to a server with auth and TLS.
func TestContexts_reuse_the_nats_CLIs_connection_settings(t *testing.T) {
	srv := newSecuredServer(t)
	writeContext, selectContext := natsConfig(t)
	writeContext("secure", map[string]any{
		"description": "the test's secured server", "url": srv.url,
		"user": "admin", "password": "adminpw",
		"ca": srv.tls.ca, "cert": srv.tls.cert, "key": srv.tls.key,
		"color_scheme": "", "inbox_prefix": "_INBOX_jetevents",
	})
	writeContext("broken", map[string]any{"url": "nats://127.0.0.1:1"})
	ctx := testCtx(t)

	out := mustRun(t, ctx, "streams", "apply", "-f", specFile, "-context", "secure")
	assert.Contains(t, out, "3 specs: 3 created")

	t.Run("$NATS_CONTEXT", func(t *testing.T) {
		t.Setenv("NATS_CONTEXT", "secure")
		assert.Contains(t, mustRun(t, ctx, "streams", "list"), "AUTH_EVENTS")
	})
	t.Run("the selected context", func(t *testing.T) {
		selectContext("secure")
		assert.Contains(t, mustRun(t, ctx, "consumers"), "user-notifications")
		assert.Contains(t, mustRun(t, ctx, "publish", "auth.user.created", "-type", "user.created"), "stream AUTH_EVENTS seq 1")
	})
	t.Run("-context wins over the selection", func(t *testing.T) {
		selectContext("secure")
		_, _, err := runCmd(t, ctx, "streams", "list", "-context", "broken")
		require.ErrorIs(t, err, errConnect)
		assert.Contains(t, err.Error(), "cannot connect to nats://127.0.0.1:1 (from nats context broken)")
	})
	t.Run("-server and $NATS_URL win over the context's url", func(t *testing.T) {
		out := mustRun(t, ctx, "streams", "list", "-context", "broken", "-server", srv.url,
			"-user", "admin", "-password", "adminpw", "-tlsca", srv.tls.ca, "-tlscert", srv.tls.cert, "-tlskey", srv.tls.key)
		assert.Contains(t, out, "AUTH_EVENTS")
		t.Setenv("NATS_URL", "nats://127.0.0.1:1")
		_, _, err := runCmd(t, ctx, "streams", "list", "-context", "secure")
		require.ErrorIs(t, err, errConnect)
		assert.Contains(t, err.Error(), "(from $NATS_URL)")
	})
	t.Run("flags win over the context's credentials", func(t *testing.T) {
		_, _, err := runCmd(t, ctx, "streams", "list", "-context", "secure", "-user", "admin", "-password", "wrong")
		require.ErrorIs(t, err, errConnect)
		assert.Contains(t, err.Error(), "the server refused the password of user admin")
	})
}

// TestContexts_credentials_inline_and_from_the_environment: a context's
// creds and nkey may be data: or env:// URIs (ADR-21) rather than paths.
func TestContexts_credentials_inline_and_from_the_environment(t *testing.T) {
	writeContext, _ := natsConfig(t)
	opOpts, creds, _ := operatorMode(t)
	credsURL := startNATS(t, opOpts)
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	nkeyURL := startNATS(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})

	writeContext("inline", map[string]any{"url": credsURL, "creds": "data:;base64," + base64.StdEncoding.EncodeToString(creds)})
	writeContext("env", map[string]any{"url": nkeyURL, "nkey": "env://JETEVENTS_TEST_SEED"})
	t.Setenv("JETEVENTS_TEST_SEED", string(seed))
	ctx := testCtx(t)
	assert.Contains(t, mustRun(t, ctx, "streams", "apply", "-f", specFile, "-context", "inline"), "3 specs: 3 created")
	assert.Contains(t, mustRun(t, ctx, "streams", "apply", "-f", specFile, "-context", "env"), "3 specs: 3 created")
}

func TestContexts_problems_say_what_to_do(t *testing.T) {
	writeContext, selectContext := natsConfig(t)
	writeContext("nsc", map[string]any{"nsc": "nsc://op/acc/user"})
	writeContext("vault", map[string]any{"creds": "op://vault/item/creds"})
	writeContext("unset", map[string]any{"creds": "env://JETEVENTS_TEST_UNSET"})
	dir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "nats", "context")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "garbled.json"), []byte("{url:"), 0o600))
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing", []string{"-context", "prod"}, []string{`nats context "prod" (from -context) does not exist: no `, filepath.Join(dir, "prod.json"), "create it with 'nats context add prod --server URL'"}},
		{"nsc", []string{"-context", "nsc"}, []string{`nats context "nsc" uses nsc`, "pass the credentials file itself with -creds"}},
		{"1password", []string{"-context", "vault"}, []string{"fetches its creds with op://", "pass the file itself with -creds FILE"}},
		{"unset variable", []string{"-context", "unset"}, []string{"reads its creds from $JETEVENTS_TEST_UNSET, which is not set"}},
		{"not JSON", []string{"-context", "garbled"}, []string{"is not valid JSON", "nats context edit garbled"}},
		{"bad name", []string{"-context", "../x"}, []string{`invalid nats context name "../x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, testCtx(t), append([]string{"streams", "list"}, tt.args...)...)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	t.Run("selected but missing", func(t *testing.T) {
		selectContext("gone")
		_, _, err := runCmd(t, testCtx(t), "streams", "list")
		require.ErrorIs(t, err, errConnect)
		assert.Contains(t, err.Error(), `nats context "gone" (from the selection in `)
	})
}
