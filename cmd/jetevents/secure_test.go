package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
)

// tlsFiles are PEM files of a test PKI: a CA, a certificate it signed for
// 127.0.0.1/localhost (server and client use), and a second CA that signed
// nothing the server trusts.
type tlsFiles struct {
	ca, cert, key    string
	otherCA          string
	otherCert, other string // a client certificate signed by otherCA, and its key
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(block), 0o600))
		return p
	}
	newCA := func(cn string, serial int64) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, der
	}
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return der, keyDER
	}
	ca, caKey, caDER := newCA("jetevents test CA", 1)
	certDER, keyDER := leaf(ca, caKey, 2)
	other, otherKey, otherDER := newCA("some other CA", 3)
	otherCertDER, otherKeyDER := leaf(other, otherKey, 4)
	return tlsFiles{
		ca:        write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:      write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		key:       write("key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		otherCA:   write("other-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: otherDER}),
		otherCert: write("other-cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: otherCertDER}),
		other:     write("other-key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: otherKeyDER}),
	}
}

// startNATS runs nats-server with JetStream and opts on a random
// 127.0.0.1 port for one test and returns its client URL.
func startNATS(t *testing.T, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	s, err := server.NewServer(&opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	require.True(t, s.ReadyForConnections(10*time.Second), "server ready")
	return s.ClientURL()
}

// securedServer is a server that requires TLS with client certificates and
// a user name and password: admin may do anything, reader only read the
// JetStream API.
type securedServer struct {
	url  string
	tls  tlsFiles
	conn *nats.Conn // admin's connection, for setting things up
}

func newSecuredServer(t *testing.T) *securedServer {
	t.Helper()
	files := newTLSFiles(t)
	tlsCfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: files.cert, KeyFile: files.key, CaFile: files.ca, Verify: true})
	require.NoError(t, err)
	readAPI := []string{
		"$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.LIST", "$JS.API.STREAM.NAMES",
		"$JS.API.CONSUMER.LIST.>", "$JS.API.CONSUMER.NAMES.>", "$JS.API.CONSUMER.INFO.>", "$JS.API.STREAM.MSG.GET.>",
	}
	url := startNATS(t, server.Options{
		TLS: true, TLSConfig: tlsCfg, TLSVerify: true, TLSTimeout: 2,
		Users: []*server.User{
			{Username: "admin", Password: "adminpw"},
			{Username: "reader", Password: "readerpw", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: readAPI},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
	})
	nc, err := nats.Connect(url, nats.UserInfo("admin", "adminpw"), nats.RootCAs(files.ca), nats.ClientCert(files.cert, files.key))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return &securedServer{url: strings.Replace(url, "nats://", "tls://", 1), tls: files, conn: nc}
}

// adminFlags are the connection flags of the admin user.
func (s *securedServer) adminFlags() []string {
	return []string{"-server", s.url, "-user", "admin", "-password", "adminpw", "-tlsca", s.tls.ca, "-tlscert", s.tls.cert, "-tlskey", s.tls.key}
}

// TestEverySubcommand_against_a_server_with_auth_and_TLS runs the whole
// operator workflow, every subcommand, against a server that requires TLS
// with a client certificate and a password.
func TestEverySubcommand_against_a_server_with_auth_and_TLS(t *testing.T) {
	srv := newSecuredServer(t)
	ctx := testCtx(t)
	as := func(args ...string) []string { return append(args, srv.adminFlags()...) }

	out := mustRun(t, ctx, as("streams", "apply", "-f", specFile)...)
	assert.Contains(t, out, "3 specs: 3 created, 0 updated, 0 unchanged")

	out = mustRun(t, ctx, as("publish", "auth.user.created", "-type", "user.created", "-data", `{"user_id":7}`, "-org", "org-1")...)
	assert.Regexp(t, `^published user.created event \S+ on auth.user.created: stream AUTH_EVENTS seq 1\n$`, out)

	out = mustRun(t, ctx, as("streams", "list")...)
	assert.Regexp(t, `AUTH_EVENTS\s+auth.>\s+file\s+1\s+1 `, out)

	out = mustRun(t, ctx, as("consumers", "AUTH_EVENTS")...)
	assert.Regexp(t, `AUTH_EVENTS\s+user-notifications\s+auth.user.>\s+1\s+0\s+0\s+0\s+never\s+yes\s+unlimited`, out)
	out = mustRun(t, ctx, as("consumers", "AUTH_EVENTS", "user-notifications")...)
	assert.Contains(t, out, "consumer:         AUTH_EVENTS/user-notifications")

	out = mustRun(t, ctx, as("tail", "-all", "-n", "1")...)
	var l line
	require.NoError(t, jsonUnmarshal(out, &l), out)
	assert.Equal(t, "auth.user.created", l.Subject)
	assert.Contains(t, string(l.Event), `"user_id":7`)

	// A dead letter, written by the middleware as the router would.
	js, err := natsjsNew(srv.conn)
	require.NoError(t, err)
	raw, err := getRaw(t, js, "AUTH_EVENTS", 1)
	require.NoError(t, err)
	tr, err := jetstream.NewTransport(srv.conn, jetstream.TransportConfig{DeadLetterStream: "DLQ"})
	require.NoError(t, err)
	dl, err := middleware.NewDeadLetterer(tr, middleware.DeadLetterConfig{Stream: "DLQ"})
	require.NoError(t, err)
	err = dl.Send(ctx, middleware.Record{Subject: raw.Subject, Header: raw.Header, Data: raw.Data, Stream: "AUTH_EVENTS",
		Consumer: "user-notifications", StreamSeq: 1, Deliveries: 5, Handler: "h", Reason: middleware.ReasonMaxDeliver, Err: errString("db down")})
	require.NoError(t, err)

	out = mustRun(t, ctx, as("dlq", "list")...)
	assert.Regexp(t, `1\s+\S+\s+max_deliver\s+auth.user.created\s+1\s+5\s+h\s+db down`, out)
	out = mustRun(t, ctx, as("dlq", "show", "1")...)
	assert.Contains(t, out, "reason:")
	assert.Contains(t, out, "db down")
	out = mustRun(t, ctx, as("dlq", "replay", "1", "-keep")...)
	assert.Contains(t, out, "replayed DLQ seq 1 -> auth.user.created (stream AUTH_EVENTS seq 2")
	out = mustRun(t, ctx, as("dlq", "purge", "-yes")...)
	assert.Contains(t, out, "purged 1 dead letter from DLQ")

	t.Run("the same with the reader, who may only read", func(t *testing.T) {
		reader := []string{"-server", srv.url, "-user", "reader", "-password", "readerpw", "-tlsca", srv.tls.ca, "-tlscert", srv.tls.cert, "-tlskey", srv.tls.key}
		out := mustRun(t, ctx, append([]string{"streams", "list"}, reader...)...)
		assert.Contains(t, out, "AUTH_EVENTS")
		_, _, err := runCmd(t, ctx, append([]string{"streams", "apply", "-f", writeSpec(t, newStreamSpec)}, reader...)...)
		require.ErrorIs(t, err, errPermission)
		_, _, err = runCmd(t, ctx, append([]string{"publish", "auth.user.created", "-type", "user.created"}, reader...)...)
		require.ErrorIs(t, err, errPermission)
	})
}

// TestConnectionFlags_each_way_to_authenticate: -user/-password, -token,
// -nkey and -creds each reach a server that requires them, and the wrong
// secret is refused with a sentence saying so.
func TestConnectionFlags_each_way_to_authenticate(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	userKey, err := nkeys.CreateUser()
	require.NoError(t, err)
	userSeed, err := userKey.Seed()
	require.NoError(t, err)
	userPub, err := userKey.PublicKey()
	require.NoError(t, err)
	otherKey, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := otherKey.Seed()
	require.NoError(t, err)
	opOpts, creds, otherCreds := operatorMode(t)

	tests := []struct {
		name      string
		server    server.Options
		good, bad []string
	}{
		{"user and password", server.Options{Username: "alice", Password: "s3cret"},
			[]string{"-user", "alice", "-password", "s3cret"}, []string{"-user", "alice", "-password", "wrong"}},
		{"token", server.Options{Authorization: "t0ken"}, []string{"-token", "t0ken"}, []string{"-token", "wrong"}},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: userPub}}},
			[]string{"-nkey", write("good.nk", userSeed)}, []string{"-nkey", write("bad.nk", otherSeed)}},
		{"creds (operator mode)", opOpts, []string{"-creds", write("good.creds", creds)}, []string{"-creds", write("bad.creds", otherCreds)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startNATS(t, tt.server)
			ctx := testCtx(t)
			out := mustRun(t, ctx, append([]string{"streams", "apply", "-f", specFile, "-server", url}, tt.good...)...)
			assert.Contains(t, out, "3 specs: 3 created")
			mustRun(t, ctx, append([]string{"publish", "auth.user.created", "-type", "user.created", "-server", url}, tt.good...)...)
			out = mustRun(t, ctx, append([]string{"tail", "-all", "-n", "1", "-server", url}, tt.good...)...)
			assert.Contains(t, out, `"subject":"auth.user.created"`)

			_, _, err := runCmd(t, ctx, append([]string{"streams", "list", "-server", url}, tt.bad...)...)
			require.ErrorIs(t, err, errConnect)
			require.ErrorIs(t, err, nats.ErrAuthorization)
			assert.Contains(t, err.Error(), "the server refused the ")
			assert.Contains(t, err.Error(), "check what was given (and that it is meant for this server), or use other credentials")

			_, _, err = runCmd(t, ctx, "streams", "list", "-server", url)
			require.ErrorIs(t, err, errConnect)
			assert.Contains(t, err.Error(), "the server requires authentication: pass -creds FILE, -nkey FILE, -user NAME -password PW or -token T, or -context NAME")
		})
	}
}

// operatorMode is a server in JWT (operator) mode with one account that has
// JetStream, the credentials of one of its users, and credentials signed
// by an account the server does not know.
func operatorMode(t *testing.T) (opts server.Options, creds, otherCreds []byte) {
	t.Helper()
	okp, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opub, err := okp.PublicKey()
	require.NoError(t, err)
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	require.NoError(t, err)
	operator, err := jwt.DecodeOperatorClaims(ojwt)
	require.NoError(t, err)

	account := func(withJetStream bool) (nkeys.KeyPair, string) {
		akp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		apub, err := akp.PublicKey()
		require.NoError(t, err)
		ac := jwt.NewAccountClaims(apub)
		if withJetStream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		ajwt, err := ac.Encode(okp)
		require.NoError(t, err)
		return akp, ajwt
	}
	user := func(akp nkeys.KeyPair) []byte {
		ukp, err := nkeys.CreateUser()
		require.NoError(t, err)
		upub, err := ukp.PublicKey()
		require.NoError(t, err)
		ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
		require.NoError(t, err)
		seed, err := ukp.Seed()
		require.NoError(t, err)
		b, err := jwt.FormatUserConfig(ujwt, seed)
		require.NoError(t, err)
		return b
	}
	akp, ajwt := account(true)
	apub, err := akp.PublicKey()
	require.NoError(t, err)
	resolver := &server.MemAccResolver{}
	require.NoError(t, resolver.Store(apub, ajwt))
	sys, sysJWT := account(false) // JetStream needs a system account in operator mode, without JetStream of its own
	sysPub, err := sys.PublicKey()
	require.NoError(t, err)
	require.NoError(t, resolver.Store(sysPub, sysJWT))
	unknown, _ := account(true)
	return server.Options{TrustedOperators: []*jwt.OperatorClaims{operator}, AccountResolver: resolver, SystemAccount: sysPub},
		user(akp), user(unknown)
}

// TestConnectionErrors_say_what_happened_and_what_to_do: each way a
// connection fails is one line naming the URL and where it came from, the
// cause, and the next step.
func TestConnectionErrors_say_what_happened_and_what_to_do(t *testing.T) {
	srv := newSecuredServer(t)
	plain := startNATS(t, server.Options{})
	secure := strings.TrimPrefix(srv.url, "tls://")
	user := []string{"-user", "admin", "-password", "adminpw"}
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant string
	}{
		{"unknown host", []string{"-server", "nats://bogus.invalid:4222"},
			[]string{`cannot connect to nats://bogus.invalid:4222 (from -server): host "bogus.invalid" not found`, "check the host name in -server, $NATS_URL or the nats context"},
			"jetevents server"},
		{"nothing listens", []string{"-server", "nats://127.0.0.1:1"},
			[]string{"cannot connect to nats://127.0.0.1:1 (from -server): connection refused, nothing listens there", "start a server (for local work: jetevents server)"}, ""},
		// nats.go upgrades to TLS by itself when the server requires it,
		// and then checks the certificate against the system's roots.
		{"TLS required, no CA given", append([]string{"-server", "nats://" + secure}, user...),
			[]string{"the server's certificate is signed by an authority this machine does not trust", "pass -tlsca with the CA certificate that signed it"}, ""},
		{"server certificate from an unknown CA", append([]string{"-server", "nats://" + secure, "-tlsca", srv.tls.otherCA}, user...),
			[]string{"the server's certificate is signed by an authority this machine does not trust", "pass -tlsca with the CA certificate that signed it"}, ""},
		{"no client certificate", append([]string{"-server", "nats://" + secure, "-tlsca", srv.tls.ca}, user...),
			[]string{"the server refused the TLS client certificate", "pass -tlscert and -tlskey with a certificate the server's CA signed"}, ""},
		{"client certificate of another CA", append([]string{"-server", "nats://" + secure, "-tlsca", srv.tls.ca, "-tlscert", srv.tls.otherCert, "-tlskey", srv.tls.other}, user...),
			[]string{"the server refused the TLS client certificate", "pass -tlscert and -tlskey"}, ""},
		{"TLS asked for, server has none", []string{"-server", plain, "-tlsca", srv.tls.ca},
			[]string{"TLS was asked for but the server does not offer it", "drop the -tls flags"}, ""},
		{"wrong password", []string{"-server", srv.url, "-user", "admin", "-password", "nope", "-tlsca", srv.tls.ca, "-tlscert", srv.tls.cert, "-tlskey", srv.tls.key},
			[]string{"the server refused the password of user admin"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, testCtx(t), append([]string{"streams", "list", "-timeout", "2s"}, tt.args...)...)
			require.ErrorIs(t, err, errConnect)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "streams list: cannot connect to "), msg)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			if tt.notWant != "" {
				assert.NotContains(t, msg, tt.notWant)
			}
			assert.NotContains(t, msg, "\n")
		})
	}
	t.Run("the URL comes from $NATS_URL", func(t *testing.T) {
		t.Setenv("NATS_URL", "nats://127.0.0.1:1")
		_, _, err := runCmd(t, testCtx(t), "dlq", "list")
		require.ErrorIs(t, err, errConnect)
		assert.Contains(t, err.Error(), "dlq list: cannot connect to nats://127.0.0.1:1 (from $NATS_URL)")
	})
	t.Run("a password in the URL is not printed", func(t *testing.T) {
		_, _, err := runCmd(t, testCtx(t), "streams", "list", "-server", "nats://admin:hunter2@127.0.0.1:1")
		require.ErrorIs(t, err, errConnect)
		assert.NotContains(t, err.Error(), "hunter2")
	})
	t.Run("two ways to authenticate", func(t *testing.T) {
		_, _, err := runCmd(t, testCtx(t), "streams", "list", "-token", "a", "-user", "b")
		require.ErrorIs(t, err, errUsage)
		assert.Contains(t, err.Error(), "-user, -token: give one way to authenticate, not 2")
	})
	t.Run("a missing TLS file", func(t *testing.T) {
		_, _, err := runCmd(t, testCtx(t), "streams", "list", "-tlsca", "/nonexistent/ca.pem")
		require.ErrorIs(t, err, errUsage)
		assert.Contains(t, err.Error(), "TLS CA file")
		assert.Contains(t, err.Error(), "fix the connection flags")
	})
}

// TestPermissionDenied_is_reported_at_once_with_what_was_refused: NATS
// reports a permission violation asynchronously; the command fails with it
// instead of waiting for its request's timeout.
func TestPermissionDenied_is_reported_at_once_with_what_was_refused(t *testing.T) {
	srv := newSecuredServer(t)
	ctx := testCtx(t)
	admin := srv.adminFlags()
	mustRun(t, ctx, append([]string{"streams", "apply", "-f", specFile}, admin...)...)
	js, err := natsjsNew(srv.conn)
	require.NoError(t, err)
	_, err = js.Publish(ctx, "dlq.auth.user.created", []byte("a dead letter"))
	require.NoError(t, err)
	reader := []string{"-server", srv.url, "-user", "reader", "-password", "readerpw", "-tlsca", srv.tls.ca, "-tlscert", srv.tls.cert, "-tlskey", srv.tls.key,
		"-timeout", "1h"} // a timeout would fail the test's context first: the error must not wait for it
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"apply", []string{"streams", "apply", "-f", writeSpec(t, newStreamSpec)}, `this user may not publish to "$JS.API.STREAM.CREATE.NEWONE"`},
		{"publish", []string{"publish", "auth.user.created", "-type", "user.created"}, `this user may not publish to "auth.user.created"`},
		{"purge", []string{"dlq", "purge", "-yes"}, `this user may not publish to "$JS.API.STREAM.PURGE.DLQ"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, ctx, append(tt.args, reader...)...)
			require.ErrorIs(t, err, errPermission)
			assert.Contains(t, err.Error(), "permission denied while ")
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "ask for permission on the subjects named")
		})
	}
	assert.NoError(t, ctx.Err(), "every permission error came before the test's deadline")
}

// helpers shared by the tests of this file and others.

type errString string

func (e errString) Error() string { return string(e) }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func natsjsNew(nc *nats.Conn) (natsjs.JetStream, error) { return natsjs.New(nc) }

func getRaw(t *testing.T, js natsjs.JetStream, stream string, seq uint64) (*natsjs.RawStreamMsg, error) {
	t.Helper()
	st, err := js.Stream(testCtx(t), stream)
	if err != nil {
		return nil, err
	}
	return st.GetMsg(testCtx(t), seq)
}

// writeSpec writes a spec file for one test and returns its path.
func writeSpec(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "streams.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

const newStreamSpec = "streams:\n  - name: NEWONE\n    subjects: [new.>]\n"
