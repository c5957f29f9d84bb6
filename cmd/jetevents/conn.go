package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
)

// defaultURL is where commands connect when neither a flag, $NATS_URL nor a
// nats context says otherwise.
const defaultURL = "nats://127.0.0.1:4222"

// connFlags are the connection flags of every subcommand that talks to a
// server. Explicit flags win over $NATS_URL, which wins over the nats
// context, which wins over the defaults.
type connFlags struct {
	fs                                 *flag.FlagSet
	server, context                    *string
	creds, nkey, user, password, token *string
	tlsCert, tlsKey, tlsCA             *string
	tlsFirst                           *bool
	timeout                            *time.Duration
}

func addConnFlags(fs *flag.FlagSet) *connFlags {
	return &connFlags{
		fs:       fs,
		server:   fs.String("server", "", "NATS URL(s), comma separated (default: $NATS_URL, the nats context's url, else "+defaultURL+")"),
		context:  fs.String("context", "", "nats CLI context to connect with (default: $NATS_CONTEXT, else the one chosen with 'nats context select')"),
		creds:    fs.String("creds", "", "credentials file (user JWT and seed)"),
		nkey:     fs.String("nkey", "", "NKey seed file"),
		user:     fs.String("user", "", "user name (with -password)"),
		password: fs.String("password", "", "password of -user"),
		token:    fs.String("token", "", "authentication token"),
		tlsCert:  fs.String("tlscert", "", "TLS client certificate (PEM, with -tlskey)"),
		tlsKey:   fs.String("tlskey", "", "TLS client key (PEM)"),
		tlsCA:    fs.String("tlsca", "", "CA certificate (PEM) that signed the server's certificate"),
		tlsFirst: fs.Bool("tlsfirst", false, "start with the TLS handshake (servers with handshake_first)"),
		timeout:  fs.Duration("timeout", 5*time.Second, "how long to wait for the server to answer each request"),
	}
}

// set reports whether the flag was given on the command line.
func (f *connFlags) set(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			given = true
		}
	})
	return given
}

// natsContext is a nats CLI context file (~/.config/nats/context/NAME.json,
// ADR-21). Fields jetevents does not use are ignored.
type natsContext struct {
	URL              string `json:"url"`
	Token            string `json:"token"`
	User             string `json:"user"`
	Password         string `json:"password"`
	Creds            string `json:"creds"`
	NKey             string `json:"nkey"`
	Cert             string `json:"cert"`
	Key              string `json:"key"`
	CA               string `json:"ca"`
	NSC              string `json:"nsc"`
	JSDomain         string `json:"jetstream_domain"`
	JSAPIPrefix      string `json:"jetstream_api_prefix"`
	InboxPrefix      string `json:"inbox_prefix"`
	UserJWT          string `json:"user_jwt"`
	TLSFirst         bool   `json:"tls_first"`
	WindowsCertStore string `json:"windows_cert_store"`
}

// natsConfigDir is $XDG_CONFIG_HOME/nats, else ~/.config/nats: where the
// nats CLI keeps its contexts.
func natsConfigDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nats")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".config", "nats")
	}
	return filepath.Join(home, ".config", "nats")
}

// selectedContext is the context to use and why: -context, $NATS_CONTEXT,
// or the one context.txt selects; "" when none is.
func (f *connFlags) selectedContext() (name, why string, err error) {
	switch {
	case *f.context != "":
		return *f.context, "-context", nil
	case os.Getenv("NATS_CONTEXT") != "":
		return os.Getenv("NATS_CONTEXT"), "$NATS_CONTEXT", nil
	}
	b, err := os.ReadFile(filepath.Join(natsConfigDir(), "context.txt"))
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", opErr(fmt.Sprintf("cannot read the selected nats context: %v", err), "fix its permissions, or pass -context NAME", errConnect, err)
	}
	return strings.TrimSpace(string(b)), "the selection in " + filepath.Join(natsConfigDir(), "context.txt"), nil
}

func loadContext(name, why string) (natsContext, error) {
	var nctx natsContext
	if name == "" || strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
		return nctx, opErr(fmt.Sprintf("invalid nats context name %q (from %s)", name, why), "list the contexts with: nats context ls", errUsage)
	}
	path := filepath.Join(natsConfigDir(), "context", name+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nctx, opErr(fmt.Sprintf("nats context %q (from %s) does not exist: no %s", name, why, path),
			"create it with 'nats context add "+name+" --server URL', or pick one of 'nats context ls'", errConnect, err)
	}
	if err != nil {
		return nctx, opErr(fmt.Sprintf("cannot read nats context %q: %v", name, err), "fix the file's permissions", errConnect, err)
	}
	if err := json.Unmarshal(b, &nctx); err != nil {
		return nctx, opErr(fmt.Sprintf("nats context %q (%s) is not valid JSON: %v", name, path, err), "fix it with: nats context edit "+name, errConnect, err)
	}
	switch {
	case nctx.NSC != "":
		return nctx, opErr(fmt.Sprintf("nats context %q uses nsc (%s), which jetevents does not run", name, nctx.NSC),
			"pass the credentials file itself with -creds (nsc generate creds)", errConnect)
	case nctx.UserJWT != "":
		return nctx, opErr(fmt.Sprintf("nats context %q authenticates with user_jwt, which jetevents does not read", name),
			"write the JWT and seed to a credentials file and pass -creds", errConnect)
	case nctx.WindowsCertStore != "":
		return nctx, opErr(fmt.Sprintf("nats context %q reads TLS files from the Windows certificate store, which jetevents does not", name),
			"export them and pass -tlscert, -tlskey and -tlsca", errConnect)
	}
	return nctx, nil
}

// credential reads a context's creds or nkey value (ADR-21): a path, a
// file:// URI, env://NAME or an RFC 2397 data: URI. It returns either a path
// or the bytes.
func credential(ctxName, field, v string) (path string, data []byte, err error) {
	switch {
	case strings.HasPrefix(v, "file://"):
		return expandHome(strings.TrimPrefix(v, "file://")), nil, nil
	case strings.HasPrefix(v, "env://"):
		name := strings.TrimPrefix(v, "env://")
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			return "", nil, opErr(fmt.Sprintf("nats context %q reads its %s from $%s, which is not set", ctxName, field, name), "set it, or pass -"+field+" FILE", errConnect)
		}
		return "", []byte(s), nil
	case strings.HasPrefix(v, "data:"):
		_, payload, ok := strings.Cut(v, ",")
		b, derr := base64.StdEncoding.DecodeString(payload)
		if !ok || derr != nil || !strings.Contains(v[:len(v)-len(payload)], ";base64") {
			return "", nil, opErr(fmt.Sprintf("nats context %q: %s is not a data:;base64, URI", ctxName, field), "fix it with: nats context edit "+ctxName, errConnect)
		}
		return "", b, nil
	case strings.Contains(v, "://"):
		scheme, _, _ := strings.Cut(v, "://")
		return "", nil, opErr(fmt.Sprintf("nats context %q fetches its %s with %s://, which jetevents does not run", ctxName, field, scheme),
			"pass the file itself with -"+field+" FILE", errConnect)
	}
	return expandHome(v), nil, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// conn is a connection to NATS with JetStream, and what the command needs
// to explain a failure.
type conn struct {
	nc *nats.Conn
	js natsjs.JetStream
	// url is the server URL with secrets redacted; source where it came from.
	url, source string
	// apiPrefix is the JetStream API prefix ("$JS.API." unless a domain or
	// prefix is configured), for the requests nats.go has no call for.
	apiPrefix string
	domain    string
	timeout   time.Duration

	mu        sync.Mutex
	permErr   error // last permission violation the server reported
	cancelCtx context.CancelCauseFunc
}

func (c *conn) Close() {
	c.cancelCtx(nil)
	c.nc.Close()
}

func (c *conn) permissionError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.permErr
}

// connect connects as the flags and the nats context say. The context it
// returns is ctx, canceled (with the server's error as its cause) when the
// server reports a permission violation: NATS reports those asynchronously,
// and a request that violates one would otherwise wait for its timeout.
func (f *connFlags) connect(ctx context.Context) (*conn, context.Context, error) {
	name, why, err := f.selectedContext()
	if err != nil {
		return nil, nil, err
	}
	var nctx natsContext
	if name != "" {
		if nctx, err = loadContext(name, why); err != nil {
			return nil, nil, err
		}
	}
	c := &conn{timeout: *f.timeout}
	switch {
	case f.set("server") && *f.server != "":
		c.url, c.source = *f.server, "-server"
	case os.Getenv("NATS_URL") != "":
		c.url, c.source = os.Getenv("NATS_URL"), "$NATS_URL"
	case nctx.URL != "":
		c.url, c.source = nctx.URL, "nats context "+name
	default:
		c.url, c.source = defaultURL, "the default"
	}
	if *f.timeout <= 0 {
		return nil, nil, usageErr(f.fs.Name(), "-timeout %s is not positive", *f.timeout)
	}

	opts := []jetstream.ConnectOption{
		jetstream.WithName("jetevents-cli"),
		jetstream.WithLogger(watermill.NopLogger{}),
		jetstream.WithConnectTimeout(*f.timeout),
	}
	auth, authOpts, err := f.authOptions(name, nctx)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, authOpts...)
	pick := func(flagName string, flagVal *string, ctxVal string) string {
		if f.set(flagName) {
			return *flagVal
		}
		return expandHome(ctxVal)
	}
	ca, cert, key := pick("tlsca", f.tlsCA, nctx.CA), pick("tlscert", f.tlsCert, nctx.Cert), pick("tlskey", f.tlsKey, nctx.Key)
	tlsOn := ca != "" || cert != "" || key != ""
	if tlsOn {
		opts = append(opts, jetstream.WithTLS(ca, cert, key))
	}
	natsOpts := []nats.Option{nats.ErrorHandler(c.asyncError)}
	if *f.tlsFirst || nctx.TLSFirst {
		natsOpts = append(natsOpts, nats.TLSHandshakeFirst())
	}
	if nctx.InboxPrefix != "" {
		natsOpts = append(natsOpts, nats.CustomInboxPrefix(nctx.InboxPrefix))
	}
	opts = append(opts, jetstream.WithNATSOptions(natsOpts...))
	c.url = redact(c.url)

	nc, err := jetstream.Connect(strings.Join(splitList(c.rawURL(f, nctx)), ","), opts...)
	if err != nil {
		if errors.Is(err, envelope.ErrInvalidConfig) {
			return nil, nil, opErr(oneLine(strings.TrimPrefix(err.Error(), "jetstream connect: ")), "fix the connection flags (or the nats context)", errUsage, err)
		}
		return nil, nil, connectError(err, c.url, c.source, auth)
	}
	c.nc = nc
	c.domain = nctx.JSDomain
	jsOpt := natsjs.WithDefaultTimeout(*f.timeout)
	switch {
	case nctx.JSDomain != "":
		c.js, err = natsjs.NewWithDomain(nc, nctx.JSDomain, jsOpt)
		c.apiPrefix = "$JS." + nctx.JSDomain + ".API."
	case nctx.JSAPIPrefix != "":
		c.js, err = natsjs.NewWithAPIPrefix(nc, nctx.JSAPIPrefix, jsOpt)
		c.apiPrefix = strings.TrimSuffix(nctx.JSAPIPrefix, ".") + "."
	default:
		c.js, err = natsjs.New(nc, jsOpt)
		c.apiPrefix = "$JS.API."
	}
	if err != nil {
		nc.Close()
		return nil, nil, opErr(fmt.Sprintf("JetStream on %s: %v", c.url, err), "check the context's jetstream_domain / jetstream_api_prefix", errConnect, err)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.cancelCtx = cancel
	c.mu.Unlock()
	return c, cctx, nil
}

// rawURL is the URL to dial (c.url is its redacted form, for messages).
func (c *conn) rawURL(f *connFlags, nctx natsContext) string {
	switch c.source {
	case "-server":
		return *f.server
	case "$NATS_URL":
		return os.Getenv("NATS_URL")
	case "the default":
		return defaultURL
	}
	return nctx.URL
}

// asyncError records a permission violation and cancels the command's
// context with it, so the request that caused it fails now, with it.
func (c *conn) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	c.mu.Lock()
	c.permErr = err
	cancel := c.cancelCtx
	c.mu.Unlock()
	if cancel != nil {
		cancel(err)
	}
}

// authOptions picks one authentication method: the flags' if any is given
// (two are a usage error), else the context's. auth describes it for error
// messages ("" for none).
func (f *connFlags) authOptions(ctxName string, nctx natsContext) (string, []jetstream.ConnectOption, error) {
	var given []string
	for _, n := range []string{"creds", "nkey", "user", "token"} {
		if f.set(n) {
			given = append(given, "-"+n)
		}
	}
	if f.set("password") && !f.set("user") {
		return "", nil, usageErr(f.fs.Name(), "-password needs -user")
	}
	switch len(given) {
	case 0:
	case 1:
		switch given[0] {
		case "-creds":
			return "credentials in " + *f.creds, []jetstream.ConnectOption{jetstream.WithCredsFile(*f.creds)}, nil
		case "-nkey":
			return "NKey in " + *f.nkey, []jetstream.ConnectOption{jetstream.WithNKeySeedFile(*f.nkey)}, nil
		case "-user":
			return "password of user " + *f.user, []jetstream.ConnectOption{jetstream.WithUserPassword(*f.user, *f.password)}, nil
		case "-token":
			return "token", []jetstream.ConnectOption{jetstream.WithToken(*f.token)}, nil
		}
	default:
		return "", nil, usageErr(f.fs.Name(), "%s: give one way to authenticate, not %d", strings.Join(given, ", "), len(given))
	}
	from := " (from nats context " + ctxName + ")"
	switch {
	case nctx.Creds != "":
		path, data, err := credential(ctxName, "creds", nctx.Creds)
		if err != nil {
			return "", nil, err
		}
		if data != nil {
			return "credentials" + from, []jetstream.ConnectOption{jetstream.WithNATSOptions(nats.UserCredentialBytes(data))}, nil
		}
		return "credentials in " + path + from, []jetstream.ConnectOption{jetstream.WithCredsFile(path)}, nil
	case nctx.NKey != "":
		path, data, err := credential(ctxName, "nkey", nctx.NKey)
		if err != nil {
			return "", nil, err
		}
		if data == nil {
			return "NKey in " + path + from, []jetstream.ConnectOption{jetstream.WithNKeySeedFile(path)}, nil
		}
		kp, err := nkeys.FromSeed(bytesTrim(data))
		if err != nil {
			return "", nil, opErr(fmt.Sprintf("nats context %q: the nkey is not a seed: %v", ctxName, err), "fix it with: nats context edit "+ctxName, errConnect, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return "", nil, opErr(fmt.Sprintf("nats context %q: the nkey: %v", ctxName, err), "fix it with: nats context edit "+ctxName, errConnect, err)
		}
		return "NKey" + from, []jetstream.ConnectOption{jetstream.WithNATSOptions(nats.Nkey(pub, kp.Sign))}, nil
	case nctx.User != "":
		return "password of user " + nctx.User + from, []jetstream.ConnectOption{jetstream.WithUserPassword(nctx.User, nctx.Password)}, nil
	case nctx.Token != "":
		return "token" + from, []jetstream.ConnectOption{jetstream.WithToken(nctx.Token)}, nil
	}
	return "", nil, nil
}

func bytesTrim(b []byte) []byte { return []byte(strings.TrimSpace(string(b))) }

// redact hides passwords and tokens in a comma-separated URL list.
func redact(urls string) string {
	parts := splitList(urls)
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			parts[i] = u.Redacted()
			if _, hasPw := u.User.Password(); !hasPw {
				u.User = url.User("xxxxx")
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// reqCtx bounds one request by the -timeout flag.
func (c *conn) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}
