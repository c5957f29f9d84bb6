package jetstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
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
	"github.com/jetevents/events/transport"
)

// secAccount is an operator-mode setup made in the test: an operator, a
// system account and an application account with JetStream, both in a
// memory resolver, and users of the application account as creds files.
type secAccount struct {
	key  nkeys.KeyPair
	opts server.Options
}

func secOperator(t *testing.T) *secAccount {
	t.Helper()
	op, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := op.PublicKey()
	require.NoError(t, err)
	sys, err := nkeys.CreateAccount()
	require.NoError(t, err)
	sysPub, err := sys.PublicKey()
	require.NoError(t, err)
	app, err := nkeys.CreateAccount()
	require.NoError(t, err)
	appPub, err := app.PublicKey()
	require.NoError(t, err)

	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	sysJWT, err := sc.Encode(op)
	require.NoError(t, err)
	ac := jwt.NewAccountClaims(appPub)
	ac.Name = "APP"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	appJWT, err := ac.Encode(op)
	require.NoError(t, err)

	res := &server.MemAccResolver{}
	require.NoError(t, res.Store(sysPub, sysJWT))
	require.NoError(t, res.Store(appPub, appJWT))
	return &secAccount{key: app, opts: server.Options{
		TrustedOperators: []*jwt.OperatorClaims{oc},
		AccountResolver:  res,
		SystemAccount:    sysPub,
		JetStream:        true,
		StoreDir:         t.TempDir(),
	}}
}

// creds writes a creds file for a new user of the account, shaped by edit
// (permissions, expiry), and returns its path, the user JWT and the seed.
func (a *secAccount) creds(t *testing.T, name string, edit func(*jwt.UserClaims)) (path, userJWT, seed string) {
	t.Helper()
	return secCreds(t, a.key, name, edit)
}

func secCreds(t *testing.T, issuer nkeys.KeyPair, name string, edit func(*jwt.UserClaims)) (path, userJWT, seed string) {
	t.Helper()
	u, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := u.PublicKey()
	require.NoError(t, err)
	s, err := u.Seed()
	require.NoError(t, err)
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	if edit != nil {
		edit(uc)
	}
	userJWT, err = uc.Encode(issuer)
	require.NoError(t, err)
	file, err := jwt.FormatUserConfig(userJWT, s)
	require.NoError(t, err)
	return pubWriteFile(t, t.TempDir(), name+".creds", file), userJWT, string(s)
}

// secServer runs a server with opts on a random 127.0.0.1 port; restart
// shuts it down and starts it again on the same port (clients see a
// disconnect and a reconnect).
func secServer(t *testing.T, opts server.Options) (url string, restart func()) {
	t.Helper()
	opts.Host, opts.NoLog, opts.NoSigs = "127.0.0.1", true, true
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	var s *server.Server
	start := func() {
		o := opts
		var err error
		s, err = server.NewServer(&o)
		require.NoError(t, err)
		go s.Start()
		require.True(t, s.ReadyForConnections(pubWait), "server ready")
	}
	start()
	opts.Port = s.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { s.Shutdown() })
	return s.ClientURL(), func() {
		s.Shutdown()
		s.WaitForShutdown()
		start()
	}
}

func TestConnect_creds_file_of_an_operator_mode_account(t *testing.T) {
	acc := secOperator(t)
	url, _ := secServer(t, acc.opts)
	good, _, _ := acc.creds(t, "orders-service", nil)

	nc, err := jetstream.Connect(url, jetstream.WithCredsFile(good), jetstream.WithLogger(&pubLogger{}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	pubStream(t, js, "ORDERS", "orders.>")
	require.NoError(t, pubNew(t, nc).Publish(pubCtx(t), "orders.created", pubEvent(t, "order.created")),
		"the account's JetStream works through the creds file")

	stranger, err := nkeys.CreateAccount() // not in the resolver
	require.NoError(t, err)
	unknownAccount, _, _ := secCreds(t, stranger, "stranger", nil)
	expired, _, _ := acc.creds(t, "expired", func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(-time.Minute).Unix() })
	tests := []struct {
		name  string
		creds string
		want  error
	}{
		{"user of an account the server does not know", unknownAccount, nats.ErrAuthorization},
		{"expired user JWT", expired, nats.ErrAuthExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := jetstream.Connect(url, jetstream.WithCredsFile(tt.creds), jetstream.WithLogger(&pubLogger{}))
			require.Error(t, err)
			assert.Nil(t, nc)
			if !errors.Is(err, tt.want) {
				// The server's reason differs by version; it is refused either way.
				assert.True(t, errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired), "%v", err)
			}
		})
	}
}

// secPermissionSetup is an operator-mode server with an AUTH stream on
// "auth.>" and an ORDERS stream on "orders.>", created by an admin.
func secPermissionSetup(t *testing.T) (*secAccount, string, natsjs.JetStream) {
	t.Helper()
	acc := secOperator(t)
	url, _ := secServer(t, acc.opts)
	admin, _, _ := acc.creds(t, "admin", nil)
	anc, err := jetstream.Connect(url, jetstream.WithCredsFile(admin), jetstream.WithLogger(&pubLogger{}))
	require.NoError(t, err)
	t.Cleanup(anc.Close)
	ajs, err := natsjs.New(anc)
	require.NoError(t, err)
	pubStream(t, ajs, "AUTH", "auth.>")
	pubStream(t, ajs, "ORDERS", "orders.>")
	return acc, url, ajs
}

func secConnect(t *testing.T, url, creds string) *nats.Conn {
	t.Helper()
	nc, err := jetstream.Connect(url, jetstream.WithCredsFile(creds), jetstream.WithLogger(&pubLogger{}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func TestPublisher_permission_violations_are_ErrPermission_naming_the_subject(t *testing.T) {
	acc, url, ajs := secPermissionSetup(t)
	noAuth, _, _ := acc.creds(t, "no-auth", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("auth.>") })
	noInbox, _, _ := acc.creds(t, "no-inbox", func(uc *jwt.UserClaims) { uc.Sub.Deny.Add("_INBOX.>") })

	tests := []struct {
		name      string
		creds     string
		async     bool
		op, subj  string // the PermissionError's
		advice    string
		maybeKept bool // stored although unconfirmed
	}{
		{"sync publish on a denied subject", noAuth, false, "publish", "auth.user.created", `grant it publish permission on "auth.user.created"`, false},
		{"async publish on a denied subject", noAuth, true, "publish", "auth.user.created", `grant it publish permission on "auth.user.created"`, false},
		{"sync publish whose ack inbox is denied", noInbox, false, "subscribe", "_INBOX.", `subscribe permission on "_INBOX.>"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := secConnect(t, url, tt.creds)
			var reports pubReports
			p := pubNew(t, nc, jetstream.PublisherConfig{PublishTimeout: time.Second, AckTimeout: time.Second, OnAsyncError: reports.handle})
			before := pubCount(t, ajs, "AUTH")

			var err error
			if tt.async {
				require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")), "queued")
				require.NoError(t, p.Flush(pubCtx(t)))
				got := reports.all()
				require.Len(t, got, 1)
				err = got[0].Err
			} else {
				err = p.Publish(context.Background(), "auth.user.created", pubEvent(t, "user.created"))
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, transport.ErrPermission)
			assert.ErrorIs(t, err, transport.ErrPublish)
			assert.ErrorIs(t, err, nats.ErrPermissionViolation)
			assert.True(t, jetstream.IsPermissionError(err))
			assert.NotErrorIs(t, err, transport.ErrTimeout, "not a slow server: a refusal")
			var pe *jetstream.PermissionError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.op, pe.Op)
			assert.True(t, strings.HasPrefix(pe.Subject, tt.subj), pe.Subject)
			assert.Contains(t, err.Error(), "publish auth.user.created event ")
			assert.Contains(t, err.Error(), "may not "+tt.op)
			assert.Contains(t, err.Error(), tt.advice)
			if tt.maybeKept {
				assert.Equal(t, before+1, pubCount(t, ajs, "AUTH"), "stored; only the ack could not come back")
			} else {
				assert.Equal(t, before, pubCount(t, ajs, "AUTH"), "refused by the server")
			}

			// The user may still publish where it is allowed (unless its acks
			// cannot come back at all).
			if tt.creds == noAuth {
				require.NoError(t, p.Publish(pubCtx(t), "orders.created", pubEvent(t, "order.created")))
			}
		})
	}
}

func TestPublisher_timeout_on_another_subject_is_not_blamed_on_an_old_violation(t *testing.T) {
	acc, url, _ := secPermissionSetup(t)
	noAuth, _, _ := acc.creds(t, "no-auth", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("auth.>") })
	nc := secConnect(t, url, noAuth)
	pubBlackHole(t, nc, "nostream.x") // allowed, but nobody ever acks it
	p := pubNew(t, nc, jetstream.PublisherConfig{PublishTimeout: time.Second})

	err := p.Publish(context.Background(), "auth.user.created", pubEvent(t, "user.created"))
	require.ErrorIs(t, err, transport.ErrPermission)
	require.True(t, errors.Is(nc.LastError(), nats.ErrPermissionViolation), "the violation is the connection's last error")

	// A plain timeout on another subject of the same connection: the last
	// error still names auth.user.created, which must not be blamed.
	err = p.Publish(context.Background(), "nostream.x", pubEvent(t, "x"))
	require.ErrorIs(t, err, transport.ErrTimeout)
	assert.False(t, jetstream.IsPermissionError(err), "%v", err)
	require.True(t, errors.Is(nc.LastError(), nats.ErrPermissionViolation), "still the last error")

	// ExplainPermission, for callers that know the operation may have hit
	// it, is not restricted to a subject.
	err = jetstream.ExplainPermission(nc, fmt.Errorf("create consumer: %w", context.DeadlineExceeded))
	assert.ErrorIs(t, err, transport.ErrPermission)
}

// secConnectPlain connects a new unrestricted user of acc, with a black
// hole on "nostream.x" so that a publish there times out.
func secConnectPlain(t *testing.T, url string, acc *secAccount) *nats.Conn {
	t.Helper()
	creds, _, _ := acc.creds(t, "plain", nil)
	nc := secConnect(t, url, creds)
	pubBlackHole(t, nc, "nostream.x")
	return nc
}

func TestExplainPermission_consumer_without_JetStream_API_permission(t *testing.T) {
	acc, url, ajs := secPermissionSetup(t)
	_, err := ajs.CreateOrUpdateConsumer(pubCtx(t), "AUTH", natsjs.ConsumerConfig{Durable: "billing", AckPolicy: natsjs.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = ajs.Publish(pubCtx(t), "auth.user.created", []byte("{}"))
	require.NoError(t, err)
	noAPI, _, _ := acc.creds(t, "no-consumer-api", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("$JS.API.CONSUMER.>") })
	noPull, _, _ := acc.creds(t, "no-pull", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("$JS.API.CONSUMER.MSG.NEXT.>") })

	t.Run("create times out; explained as the denied API subject", func(t *testing.T) {
		nc := secConnect(t, url, noAPI)
		js, err := natsjs.New(nc)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.CreateOrUpdateConsumer(ctx, "AUTH", natsjs.ConsumerConfig{Durable: "audit"})
		require.ErrorIs(t, err, context.DeadlineExceeded, "what nats.go v1.55 returns")
		assert.False(t, jetstream.IsPermissionError(err), "nats.go's error alone does not say it")

		err = jetstream.ExplainPermission(nc, err)
		assert.ErrorIs(t, err, transport.ErrPermission)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var pe *jetstream.PermissionError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "publish", pe.Op)
		assert.True(t, strings.HasPrefix(pe.Subject, "$JS.API.CONSUMER."), pe.Subject)
		assert.Contains(t, pe.Subject, "AUTH")
		assert.Contains(t, err.Error(), `"$JS.API.>", the JetStream API`)
	})
	t.Run("consume without pull permission reports no heartbeat; explained as the pull subject", func(t *testing.T) {
		nc := secConnect(t, url, noPull)
		js, err := natsjs.New(nc)
		require.NoError(t, err)
		cons, err := js.Consumer(pubCtx(t), "AUTH", "billing")
		require.NoError(t, err, "reading the consumer is allowed")
		errs := make(chan error, 16)
		cc, err := cons.Consume(func(m natsjs.Msg) { _ = m.Ack() },
			natsjs.PullHeartbeat(500*time.Millisecond),
			natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		require.NoError(t, err, "Consume itself does not fail")
		defer cc.Stop()
		var got error
		select {
		case got = <-errs:
		case <-time.After(pubWait):
			t.Fatal("no consume error")
		}
		require.ErrorIs(t, got, natsjs.ErrNoHeartbeat)
		got = jetstream.ExplainPermission(nc, got)
		var pe *jetstream.PermissionError
		require.ErrorAs(t, got, &pe)
		assert.Equal(t, "$JS.API.CONSUMER.MSG.NEXT.AUTH.billing", pe.Subject)
		assert.Contains(t, got.Error(), "a consumer pulls its messages there")
	})
}

func TestExplainPermission_leaves_other_errors_alone(t *testing.T) {
	acc, url, _ := secPermissionSetup(t)
	noAuth, _, _ := acc.creds(t, "no-auth", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("auth.>") })
	denied := secConnect(t, url, noAuth)
	require.NoError(t, denied.Publish("auth.x", nil))
	require.Eventually(t, func() bool { return errors.Is(denied.LastError(), nats.ErrPermissionViolation) }, pubWait, time.Millisecond)
	clean := secConnectPlain(t, url, acc)

	already := &jetstream.PermissionError{Op: "publish", Subject: "a"}
	other := errors.New("boom")
	tests := []struct {
		name string
		nc   *nats.Conn
		err  error
		want bool // explained as a permission error
	}{
		{"nil error", denied, nil, false},
		{"not a timeout", denied, other, false},
		{"timeout on a clean connection", clean, context.DeadlineExceeded, false},
		{"nil connection", nil, context.DeadlineExceeded, false},
		{"timeout after a violation", denied, context.DeadlineExceeded, true},
		{"nats timeout after a violation", denied, nats.ErrTimeout, true},
		{"already a permission error", denied, already, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jetstream.ExplainPermission(tt.nc, tt.err)
			assert.Equal(t, tt.want, errors.Is(got, transport.ErrPermission), "%v", got)
			if !tt.want {
				assert.Equal(t, tt.err, got, "unchanged")
			}
		})
	}
}

func TestConnect_mutual_TLS_with_separate_server_and_client_certificates(t *testing.T) {
	dir := t.TempDir()
	ca := secNewCA(t, "jetevents test CA")
	serverCert, serverKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	caFile := pubWriteFile(t, dir, "ca.pem", ca.pem)
	rogue := secNewCA(t, "rogue CA")
	rogueCert, rogueKey := rogue.issue(t, dir, "rogue-client", x509.ExtKeyUsageClientAuth)

	tlsCfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: caFile, Verify: true})
	require.NoError(t, err)
	url, _ := secServer(t, server.Options{TLS: true, TLSConfig: tlsCfg, TLSVerify: true, TLSTimeout: 2})

	nc, err := jetstream.Connect(url, jetstream.WithTLS(caFile, clientCert, clientKey), jetstream.WithLogger(&pubLogger{}))
	require.NoError(t, err)
	defer nc.Close()
	state, err := nc.TLSConnectionState()
	require.NoError(t, err)
	require.Len(t, state.PeerCertificates, 1)
	assert.Equal(t, "server", state.PeerCertificates[0].Subject.CommonName)

	refused := []struct {
		name string
		opt  jetstream.ConnectOption
	}{
		{"no client certificate", jetstream.WithTLS(caFile, "", "")},
		{"client certificate of another CA", jetstream.WithTLS(caFile, rogueCert, rogueKey)},
		{"server not trusted (no CA given)", jetstream.WithTLS("", clientCert, clientKey)},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := jetstream.Connect(url, tt.opt, jetstream.WithLogger(&pubLogger{}), jetstream.WithConnectTimeout(2*time.Second))
			require.Error(t, err)
			assert.Nil(t, nc)
		})
	}
}

// secCA is a certificate authority made in the test.
type secCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func secNewCA(t *testing.T, name string) *secCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &secCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 / localhost with usage, signed
// by the CA, and its key; returns the PEM paths.
func (ca *secCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile = pubWriteFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile = pubWriteFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return certFile, keyFile
}

// secText is everything a logger was given, rendered: messages, errors
// and fields.
func secText(l *pubLogger) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.entries {
		fmt.Fprintf(&b, "%s %s err=%v fields=%v\n", e.level, e.msg, e.err, e.fields)
	}
	return b.String()
}

func TestConnect_no_secret_in_logs_or_errors(t *testing.T) {
	const (
		password, wrongPassword = "pa55-W0rd-secret", "wr0ng-pa55-secret"
		token, wrongToken       = "t0ken-s3cret-value", "wr0ng-t0ken-value"
	)
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	dir := t.TempDir()
	acc := secOperator(t)
	credsFile, userJWT, credsSeed := acc.creds(t, "svc", func(uc *jwt.UserClaims) { uc.Pub.Deny.Add("auth.>") })
	stranger, err := nkeys.CreateAccount()
	require.NoError(t, err)
	badCreds, badJWT, badSeed := secCreds(t, stranger, "stranger", nil)
	secrets := []string{password, wrongPassword, token, wrongToken, string(seed), string(otherSeed), userJWT, credsSeed, badJWT, badSeed}

	tests := []struct {
		name      string
		server    server.Options
		good, bad jetstream.ConnectOption
		badURL    func(url string) string // a URL carrying the secret, if any
	}{
		{"user and password", server.Options{Username: "alice", Password: password},
			jetstream.WithUserPassword("alice", password), jetstream.WithUserPassword("alice", wrongPassword),
			func(url string) string {
				return strings.Replace(url, "nats://", "nats://alice:"+wrongPassword+"@", 1)
			}},
		{"token", server.Options{Authorization: token},
			jetstream.WithToken(token), jetstream.WithToken(wrongToken),
			func(url string) string { return strings.Replace(url, "nats://", "nats://"+wrongToken+"@", 1) }},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
			jetstream.WithNKeySeedFile(pubWriteFile(t, dir, "good.nk", seed)), jetstream.WithNKeySeedFile(pubWriteFile(t, dir, "bad.nk", otherSeed)), nil},
		{"creds file", acc.opts,
			jetstream.WithCredsFile(credsFile), jetstream.WithCredsFile(badCreds), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, restart := secServer(t, tt.server)
			var logs pubLogger
			var texts []string

			nc, err := jetstream.Connect(url, tt.good, jetstream.WithLogger(&logs),
				jetstream.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
			require.NoError(t, err)
			// Disconnect, reconnect, an asynchronous permission error, close:
			// every callback Connect installs has something to log.
			restart()
			require.Eventually(t, func() bool { return len(logs.find("nats reconnected")) > 0 }, pubWait, time.Millisecond)
			require.NotEmpty(t, logs.find("nats disconnected"))
			require.NoError(t, nc.Publish("auth.denied", nil))
			require.NoError(t, nc.Flush())
			if tt.name == "creds file" {
				require.Eventually(t, func() bool { return len(logs.find("nats asynchronous error")) > 0 }, pubWait, time.Millisecond)
				p := pubNew(t, nc, jetstream.PublisherConfig{PublishTimeout: 300 * time.Millisecond})
				perr := p.Publish(context.Background(), "auth.user.created", pubEvent(t, "user.created"))
				require.ErrorIs(t, perr, transport.ErrPermission)
				texts = append(texts, perr.Error())
			}
			nc.Close()
			require.Eventually(t, func() bool { return len(logs.find("nats connection closed")) > 0 }, pubWait, time.Millisecond)

			// Refused connections: the error text, and what was logged.
			_, err = jetstream.Connect(url, tt.bad, jetstream.WithLogger(&logs))
			require.Error(t, err)
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			if tt.badURL != nil {
				_, err = jetstream.Connect(tt.badURL(url), jetstream.WithLogger(&logs))
				require.Error(t, err)
				texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			}

			all := secText(&logs) + strings.Join(texts, "\n")
			require.Contains(t, all, "nats reconnected", "the logs were captured")
			for _, s := range secrets {
				assert.NotContains(t, all, s, "a secret leaked into a log line or an error")
			}
			if tt.badURL != nil {
				assert.Contains(t, all, "[REDACTED]@127.0.0.1", "the URL's credentials are masked, not dropped silently")
			}
		})
	}
}
