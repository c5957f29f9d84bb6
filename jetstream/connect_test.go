package jetstream_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
)

func TestConnect_production_defaults_on_the_embedded_server(t *testing.T) {
	srv := eventstest.NewServer(t)
	var logger pubLogger
	nc, err := jetstream.Connect(srv.URL,
		jetstream.WithName("auth-service"),
		jetstream.WithLogger(&logger),
		jetstream.WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	require.True(t, nc.IsConnected())
	assert.Equal(t, "auth-service", nc.Opts.Name)
	assert.Equal(t, -1, nc.Opts.MaxReconnect, "reconnect forever")
	assert.Equal(t, 8<<20, nc.Opts.ReconnectBufSize, "8 MiB reconnect buffer")
	assert.Equal(t, 20*time.Second, nc.Opts.PingInterval)
	assert.Equal(t, 3, nc.Opts.MaxPingsOut)
	assert.NotNil(t, nc.Opts.CustomReconnectDelayCB)

	// A publisher on it survives a server restart; the events are logged.
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, nc)
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))

	srv.Stop()
	require.Eventually(t, func() bool { return len(logger.find("nats disconnected")) > 0 }, pubWait, time.Millisecond)
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return len(logger.find("nats reconnected")) > 0 }, pubWait, time.Millisecond)
	require.Eventually(t, func() bool {
		return p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")) == nil
	}, pubWait, 10*time.Millisecond)
	assert.Equal(t, "auth-service", logger.find("nats reconnected")[0].fields["name"])

	nc.Close()
	require.Eventually(t, func() bool { return len(logger.find("nats connection closed")) > 0 }, pubWait, time.Millisecond)
}

func TestConnect_reconnect_delay_backs_off_with_jitter(t *testing.T) {
	o, err := jetstream.ConnectOptions("", jetstream.WithReconnectBackoff(100*time.Millisecond, time.Second))
	require.NoError(t, err)
	delay := o.CustomReconnectDelayCB
	require.NotNil(t, delay)
	for _, tt := range []struct {
		attempts int
		base     time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {1000, time.Second}} {
		for range 50 {
			d := delay(tt.attempts)
			assert.GreaterOrEqual(t, d, tt.base/2, "attempt %d", tt.attempts)
			assert.Less(t, d, tt.base, "attempt %d", tt.attempts)
		}
	}
	assert.Equal(t, []string{nats.DefaultURL}, o.Servers, "empty URL means the default")

	o, err = jetstream.ConnectOptions("nats://a:4222, nats://b:4222")
	require.NoError(t, err)
	assert.Equal(t, []string{"nats://a:4222", "nats://b:4222"}, o.Servers)
}

func TestConnectOptions_auth(t *testing.T) {
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	seedFile := pubWriteFile(t, dir, "user.nk", seed)
	credsFile := pubWriteFile(t, dir, "user.creds", []byte("not read until connect"))
	ca, cert, key := pubTLSFiles(t, dir)

	tests := []struct {
		name  string
		opts  []jetstream.ConnectOption
		check func(t *testing.T, o nats.Options)
	}{
		{"creds file", []jetstream.ConnectOption{jetstream.WithCredsFile(credsFile)}, func(t *testing.T, o nats.Options) {
			assert.NotNil(t, o.UserJWT)
			assert.NotNil(t, o.SignatureCB)
		}},
		{"nkey seed file", []jetstream.ConnectOption{jetstream.WithNKeySeedFile(seedFile)}, func(t *testing.T, o nats.Options) {
			assert.Equal(t, pub, o.Nkey)
			assert.NotNil(t, o.SignatureCB)
		}},
		{"user and password", []jetstream.ConnectOption{jetstream.WithUserPassword("alice", "s3cret")}, func(t *testing.T, o nats.Options) {
			assert.Equal(t, "alice", o.User)
			assert.Equal(t, "s3cret", o.Password)
		}},
		{"token", []jetstream.ConnectOption{jetstream.WithToken("t0ken")}, func(t *testing.T, o nats.Options) {
			assert.Equal(t, "t0ken", o.Token)
		}},
		{"TLS CA only", []jetstream.ConnectOption{jetstream.WithTLS(ca, "", "")}, func(t *testing.T, o nats.Options) {
			assert.True(t, o.Secure)
			assert.NotNil(t, o.RootCAsCB)
			assert.Nil(t, o.TLSCertCB)
		}},
		{"TLS client certificate", []jetstream.ConnectOption{jetstream.WithTLS(ca, cert, key)}, func(t *testing.T, o nats.Options) {
			assert.True(t, o.Secure)
			assert.NotNil(t, o.RootCAsCB)
			assert.NotNil(t, o.TLSCertCB)
		}},
		{"TLS config", []jetstream.ConnectOption{jetstream.WithTLSConfig(&tls.Config{ServerName: "nats.local"})}, func(t *testing.T, o nats.Options) {
			assert.True(t, o.Secure)
			assert.Equal(t, "nats.local", o.TLSConfig.ServerName)
		}},
		{"user and password with TLS", []jetstream.ConnectOption{jetstream.WithUserPassword("alice", "pw"), jetstream.WithTLS(ca, "", "")}, func(t *testing.T, o nats.Options) {
			assert.Equal(t, "alice", o.User)
			assert.True(t, o.Secure)
		}},
		{"raw nats option wins", []jetstream.ConnectOption{jetstream.WithNATSOptions(nats.MaxReconnects(3))}, func(t *testing.T, o nats.Options) {
			assert.Equal(t, 3, o.MaxReconnect)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := jetstream.ConnectOptions("nats://127.0.0.1:4222", tt.opts...)
			require.NoError(t, err)
			tt.check(t, o)
		})
	}

	invalid := []struct {
		name string
		opts []jetstream.ConnectOption
	}{
		{"two auth methods", []jetstream.ConnectOption{jetstream.WithToken("t"), jetstream.WithUserPassword("u", "p")}},
		{"missing creds file", []jetstream.ConnectOption{jetstream.WithCredsFile(filepath.Join(dir, "nope.creds"))}},
		{"missing seed file", []jetstream.ConnectOption{jetstream.WithNKeySeedFile(filepath.Join(dir, "nope.nk"))}},
		{"seed file without a seed", []jetstream.ConnectOption{jetstream.WithNKeySeedFile(credsFile)}},
		{"empty token", []jetstream.ConnectOption{jetstream.WithToken("")}},
		{"empty user", []jetstream.ConnectOption{jetstream.WithUserPassword("", "p")}},
		{"certificate without key", []jetstream.ConnectOption{jetstream.WithTLS("", cert, "")}},
		{"missing CA file", []jetstream.ConnectOption{jetstream.WithTLS(filepath.Join(dir, "nope.pem"), "", "")}},
		{"CA file not PEM", []jetstream.ConnectOption{jetstream.WithTLS(credsFile, "", "")}},
		{"nil TLS config", []jetstream.ConnectOption{jetstream.WithTLSConfig(nil)}},
		{"TLS files and TLS config", []jetstream.ConnectOption{jetstream.WithTLS(ca, "", ""), jetstream.WithTLSConfig(&tls.Config{})}},
		{"nil logger", []jetstream.ConnectOption{jetstream.WithLogger(nil)}},
		{"backoff max below initial", []jetstream.ConnectOption{jetstream.WithReconnectBackoff(time.Second, time.Millisecond)}},
		{"zero reconnect buffer", []jetstream.ConnectOption{jetstream.WithReconnectBufferSize(0)}},
		{"zero ping interval", []jetstream.ConnectOption{jetstream.WithPingInterval(0, 2)}},
		{"zero connect timeout", []jetstream.ConnectOption{jetstream.WithConnectTimeout(0)}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jetstream.ConnectOptions("", tt.opts...)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
			nc, err := jetstream.Connect("", tt.opts...)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
			assert.Nil(t, nc)
		})
	}
}

func TestConnect_authenticates_against_the_server(t *testing.T) {
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

	tests := []struct {
		name      string
		server    server.Options
		good, bad jetstream.ConnectOption
	}{
		{"user and password", server.Options{Username: "alice", Password: "s3cret"},
			jetstream.WithUserPassword("alice", "s3cret"), jetstream.WithUserPassword("alice", "wrong")},
		{"token", server.Options{Authorization: "t0ken"},
			jetstream.WithToken("t0ken"), jetstream.WithToken("wrong")},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
			jetstream.WithNKeySeedFile(pubWriteFile(t, dir, "good.nk", seed)), jetstream.WithNKeySeedFile(pubWriteFile(t, dir, "bad.nk", otherSeed))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pubStartNATS(t, tt.server)
			nc, err := jetstream.Connect(url, tt.good, jetstream.WithLogger(&pubLogger{}))
			require.NoError(t, err)
			defer nc.Close()
			assert.True(t, nc.IsConnected())

			nc, err = jetstream.Connect(url, tt.bad, jetstream.WithLogger(&pubLogger{}))
			require.Error(t, err)
			assert.ErrorIs(t, err, nats.ErrAuthorization)
			assert.Nil(t, nc)
		})
	}
}

func TestConnect_TLS_with_client_certificate(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := pubTLSFiles(t, dir)
	tlsCfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cert, KeyFile: key, CaFile: ca, Verify: true})
	require.NoError(t, err)
	url := pubStartNATS(t, server.Options{TLS: true, TLSConfig: tlsCfg, TLSVerify: true, TLSTimeout: 2})

	nc, err := jetstream.Connect(url, jetstream.WithTLS(ca, cert, key), jetstream.WithLogger(&pubLogger{}))
	require.NoError(t, err)
	defer nc.Close()
	state, err := nc.TLSConnectionState()
	require.NoError(t, err)
	assert.True(t, state.HandshakeComplete)
	assert.Len(t, state.PeerCertificates, 1)

	_, err = jetstream.Connect(url, jetstream.WithTLS(ca, "", ""), jetstream.WithLogger(&pubLogger{}),
		jetstream.WithConnectTimeout(time.Second))
	assert.Error(t, err, "the server requires a client certificate")
}

// pubStartNATS runs a core NATS server (no JetStream) with opts on a
// random 127.0.0.1 port for one test and returns its URL.
func pubStartNATS(t *testing.T, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(&opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(s.Shutdown)
	require.True(t, s.ReadyForConnections(pubWait), "server ready")
	return s.ClientURL()
}

func pubWriteFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// pubTLSFiles writes a self-signed CA and a certificate it signed, valid
// for 127.0.0.1 and usable by both server and client. Returns PEM paths.
func pubTLSFiles(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jetevents test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	require.NoError(t, err)

	caFile = pubWriteFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	certFile = pubWriteFile(t, dir, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	keyFile = pubWriteFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return caFile, certFile, keyFile
}
