package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/jetevents/events/transport"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Errors of the command. Commands return them inside an opError (or wrapped
// with %w), so tests and callers match them with errors.Is; main prints the
// message and exits 2 for errUsage, 1 for the others.
var (
	// errUsage marks a command line that could not be understood.
	errUsage = errors.New("usage")

	// errRefused: a destructive command was not confirmed (dlq purge
	// without -yes). What it would have done is printed first.
	errRefused = errors.New("refused")

	// errNotDeadLetter: a message of the dead-letter stream lacks the
	// headers a replay needs (Dlq-Original-Subject).
	errNotDeadLetter = errors.New("not a dead letter")

	// errDeduplicated: a replay with -original-msg-id was dropped by the
	// target stream as a duplicate (the original Nats-Msg-Id is still inside
	// the stream's duplicates window). Nothing was stored; the dead letter is
	// kept.
	errDeduplicated = errors.New("replay de-duplicated by the stream")

	// errServer: the server answered a request with an error.
	errServer = errors.New("server error")

	// errConnect: no connection to NATS (unreachable, refused, unknown host,
	// TLS or authentication failure). The message says which and what to do.
	errConnect = errors.New("cannot connect to NATS")

	// errPermission: the server refused a request for lack of permission.
	errPermission = errors.New("permission denied")

	// errNotFound: a stream, consumer or message the command was asked for
	// does not exist. Matched together with nats.go's sentinel
	// (natsjs.ErrStreamNotFound, ErrConsumerNotFound, ErrMsgNotFound).
	errNotFound = errors.New("not found")

	// errNoJetStream: the server (or the account) has no JetStream.
	errNoJetStream = errors.New("JetStream not enabled")

	// errServerStart: `jetevents server` could not start (port in use, bad
	// host, unwritable store, ...).
	errServerStart = errors.New("server did not start")
)

// noJetStreamNext is what to do when no JetStream answers, on every
// subcommand that needs it.
const noJetStreamNext = "start nats-server with JetStream (-js), as jetevents server does, or check the account and the JetStream domain (nats account info)"

// opError is an error written for the operator: what happened, then what
// to do next, on one line. Its causes stay reachable with errors.Is and
// errors.As; their text is not repeated.
type opError struct {
	msg    string
	next   string
	causes []error
}

func (e *opError) Error() string {
	if e.next == "" {
		return e.msg
	}
	return e.msg + ": " + e.next
}

func (e *opError) Unwrap() []error { return e.causes }

// opErr is an opError: msg says what happened, next what to do about it.
func opErr(msg, next string, causes ...error) error {
	return &opError{msg: msg, next: next, causes: causes}
}

// usageErr is a command line the command does not understand; main exits 2.
func usageErr(cmd, format string, args ...any) error {
	return opErr(fmt.Sprintf(format, args...), "see 'jetevents "+cmd+" -h'", errUsage)
}

// oneLine folds an error text onto one line: errors are printed one per
// line, whatever a server or the OS put in them.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// explain turns an error of a JetStream request into an opError saying
// what went wrong and what to do; doing is what the command was doing
// ("listing streams"). Errors that already are opErrors are returned as
// they are. c may be nil (no connection yet).
func (c *conn) explain(ctx context.Context, err error, doing string) error {
	var oe *opError
	if err == nil || errors.As(err, &oe) {
		return err
	}
	if c != nil {
		if cause := context.Cause(ctx); errors.Is(cause, nats.ErrPermissionViolation) {
			err = cause
		} else if perr := c.permissionError(); perr != nil && isTimeout(err) {
			err = perr
		}
	}
	server := "the server"
	if c != nil {
		server = c.url
	}
	var apiErr *natsjs.APIError
	switch {
	case errors.Is(err, nats.ErrPermissionViolation):
		return opErr(fmt.Sprintf("permission denied while %s: %s", doing, permissionText(err)),
			"ask for permission on the subjects named (the JetStream API is $JS.API.>), or connect as a user who has it (-creds, -user, -context)", errPermission, err)
	case errors.Is(err, natsjs.ErrJetStreamNotEnabledForAccount):
		return opErr(fmt.Sprintf("JetStream is not enabled for this account on %s", server),
			"ask the server's operator to give the account JetStream limits (check with: nats account info)", errNoJetStream, err)
	case errors.Is(err, natsjs.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders), errors.Is(err, transport.ErrNoJetStream):
		return opErr(fmt.Sprintf("no JetStream answered on %s while %s", server, doing), noJetStreamNext, errNoJetStream, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, natsjs.ErrConnectionClosed):
		return opErr(fmt.Sprintf("the connection to %s closed while %s", server, doing),
			"check that the server is up (nats server ping) and run the command again", errConnect, err)
	case isTimeout(err):
		return opErr(fmt.Sprintf("%s did not answer in time while %s", server, doing),
			"check that it is up and JetStream is healthy (nats server ping; nats account info), then run the command again", err)
	case errors.As(err, &apiErr):
		return opErr(fmt.Sprintf("the server refused %s: %s (err_code %d)", doing, apiErr.Description, apiErr.ErrorCode),
			"see 'nats errors lookup "+fmt.Sprint(apiErr.ErrorCode)+"' for what the code means", errServer, err)
	}
	return opErr(fmt.Sprintf("%s: %s", doing, oneLine(err.Error())), "", err)
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, natsjs.ErrAsyncPublishTimeout)
}

// permissionText is the server's `Permissions Violation for Publish to
// "$JS.API.STREAM.INFO.X"` as `this user may not publish to
// "$JS.API.STREAM.INFO.X"`.
func permissionText(err error) string {
	m := permissionRE.FindStringSubmatch(err.Error())
	if m == nil {
		return oneLine(err.Error())
	}
	verb := "publish to"
	if strings.HasPrefix(m[1], "Subscription") {
		verb = "subscribe to"
	}
	return fmt.Sprintf("this user may not %s %q", verb, m[2])
}

var permissionRE = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) (?:to|using) "?([^"\s]+)"?`)

// connectError explains why connecting to url failed. source says where
// the URL came from ("-server", "$NATS_URL", "context prod", "the
// default") and auth which credentials were offered ("" for none).
func connectError(err error, url, source, auth string) error {
	where := fmt.Sprintf("%s (from %s)", url, source)
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var netOpErr *net.OpError
	text := err.Error()
	switch {
	case errors.As(err, &dnsErr):
		return opErr(fmt.Sprintf("cannot connect to %s: host %q not found (%s)", where, dnsErr.Name, dnsErr.Err),
			"check the host name in -server, $NATS_URL or the nats context", errConnect, err)
	case errors.Is(err, nats.ErrNoServers):
		// nats.go reports a refused connection this way.
		return opErr(fmt.Sprintf("cannot connect to %s: connection refused, nothing listens there", where),
			"start a server (for local work: jetevents server) or point -server, $NATS_URL or -context at yours", errConnect, err)
	case errors.Is(err, nats.ErrAuthorization) && auth == "":
		return opErr(fmt.Sprintf("cannot connect to %s: the server requires authentication", where),
			"pass -creds FILE, -nkey FILE, -user NAME -password PW or -token T, or -context NAME", errConnect, err)
	case errors.Is(err, nats.ErrAuthorization):
		return opErr(fmt.Sprintf("cannot connect to %s: the server refused the %s", where, auth),
			"check what was given (and that it is meant for this server), or use other credentials", errConnect, err)
	case errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAccountAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return opErr(fmt.Sprintf("cannot connect to %s: the credentials have expired or were revoked", where),
			"get new ones (nsc generate creds, or ask the operator)", errConnect, err)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return opErr(fmt.Sprintf("cannot connect to %s: the server requires TLS", where),
			"use a tls:// URL or pass -tlsca CA.pem (and -tlscert/-tlskey if it verifies clients)", errConnect, err)
	case errors.Is(err, nats.ErrSecureConnWanted):
		return opErr(fmt.Sprintf("cannot connect to %s: TLS was asked for but the server does not offer it", where),
			"drop the -tls flags and tls:// (or enable TLS on the server)", errConnect, err)
	case errors.As(err, &unknownCA):
		return opErr(fmt.Sprintf("cannot connect to %s: the server's certificate is signed by an authority this machine does not trust", where),
			"pass -tlsca with the CA certificate that signed it", errConnect, err)
	case errors.As(err, &hostErr):
		return opErr(fmt.Sprintf("cannot connect to %s: the server's certificate is not valid for that host (%s)", where, hostErr.Error()),
			"connect with a host name the certificate names", errConnect, err)
	case errors.As(err, &certErr):
		return opErr(fmt.Sprintf("cannot connect to %s: the server's certificate is invalid (%s)", where, certErr.Error()),
			"ask the operator to renew it", errConnect, err)
	case strings.Contains(text, "tls: certificate required"), strings.Contains(text, "tls: bad certificate"),
		strings.Contains(text, "tls: unknown certificate authority"), strings.Contains(text, "tls: unknown certificate"):
		return opErr(fmt.Sprintf("cannot connect to %s: the server refused the TLS client certificate (%s)", where, tlsAlert(text)),
			"pass -tlscert and -tlskey with a certificate the server's CA signed", errConnect, err)
	case strings.Contains(text, "after TLS handshake"):
		// TLS 1.3: the server checks the client certificate after the
		// handshake; its alert may arrive after the connection closed.
		return opErr(fmt.Sprintf("cannot connect to %s: the server refused the TLS client certificate (it closed the connection right after the handshake)", where),
			"pass -tlscert and -tlskey with a certificate the server's CA signed", errConnect, err)
	case strings.Contains(text, "tls:") || strings.Contains(text, "x509:"):
		return opErr(fmt.Sprintf("cannot connect to %s: TLS failed: %s", where, oneLine(text)),
			"check -tlsca, -tlscert and -tlskey", errConnect, err)
	case isTimeout(err) || (errors.As(err, &netOpErr) && netOpErr.Timeout()):
		return opErr(fmt.Sprintf("cannot connect to %s: no answer in time", where),
			"check the host and port, and that no firewall drops the connection", errConnect, err)
	}
	return opErr(fmt.Sprintf("cannot connect to %s: %s", where, oneLine(text)),
		"check -server, $NATS_URL or the nats context", errConnect, err)
}

// tlsAlert is "certificate required" out of "remote error: tls: certificate required".
func tlsAlert(text string) string {
	if i := strings.LastIndex(text, "tls: "); i >= 0 {
		return strings.TrimSpace(text[i+len("tls: "):])
	}
	return text
}
