package mailu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultLoginTimeout bounds VerifyLogin when ctx has no deadline.
const DefaultLoginTimeout = 30 * time.Second

// SMTPAddr is where a tenant's MailU takes SMTP AUTH, and how. MailU
// 2024.06 offers submission with implicit TLS on 465 (on by default) and
// with STARTTLS on 587 (off unless added to PORTS).
type SMTPAddr struct {
	Host, Port string
	// ImplicitTLS: TLS from the first byte (465); otherwise STARTTLS.
	ImplicitTLS bool
}

// ParseSMTPAddr reads a tenant's smtp_addr: "smtps://host:port" (implicit
// TLS), "smtp://host:port" (STARTTLS), or a bare "host:port", which is
// STARTTLS except on port 465, where MailU speaks implicit TLS. The bare
// form is what records stored before the scheme existed hold; it keeps
// its meaning.
func ParseSMTPAddr(s string) (SMTPAddr, error) {
	rest, implicit, explicit := s, false, false
	switch {
	case strings.HasPrefix(s, "smtps://"):
		rest, implicit, explicit = s[len("smtps://"):], true, true
	case strings.HasPrefix(s, "smtp://"):
		rest, explicit = s[len("smtp://"):], true
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" || port == "" || strings.ContainsAny(rest, "/?#@ ") {
		return SMTPAddr{}, fmt.Errorf("%w: smtp address %q is not [smtps://|smtp://]host:port", ErrRejected, s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return SMTPAddr{}, fmt.Errorf("%w: smtp address %q has no valid port", ErrRejected, s)
	}
	if !explicit && port == "465" {
		implicit = true
	}
	return SMTPAddr{Host: host, Port: port, ImplicitTLS: implicit}, nil
}

// HostPort is the address to dial.
func (a SMTPAddr) HostPort() string { return net.JoinHostPort(a.Host, a.Port) }

// VerifyLogin proves that username and password log in to the SMTP server
// at addr (an smtp_addr as ParseSMTPAddr reads it): it connects, says
// EHLO, authenticates with AUTH PLAIN and quits. It returns nil on
// success, an error wrapping ErrAuthFailed when the server rejects the
// credentials (535), and one wrapping ErrUnavailable for anything that
// says nothing about the credentials (refused connection, timeout, 4xx,
// no AUTH PLAIN, a TLS failure).
//
// A 535 says only that this login was refused: MailU's front answers the
// same 535 for a wrong password, a rate limit and AUTH_REQUIRE_TOKENS. A
// caller that must know which password MailU holds asks its hash
// (Client.PasswordHash).
//
// With tlsConf set, the password only ever travels inside TLS: implicit
// TLS, or a STARTTLS upgrade that a server not offering it fails, with
// the certificate checked against tlsConf.RootCAs and the host name (an
// empty tlsConf.ServerName is taken from addr). With tlsConf nil, a
// STARTTLS address is logged in to in clear and an implicit-TLS one with
// the system's roots: clear text is only meant for a server on loopback.
func VerifyLogin(ctx context.Context, addr, username, password string, tlsConf *tls.Config) error {
	if err := verifyLogin(ctx, addr, username, password, tlsConf); err != nil {
		return fmt.Errorf("mailu: SMTP login as %s at %s: %w", username, addr, err)
	}
	return nil
}

func verifyLogin(ctx context.Context, addr, username, password string, tlsConf *tls.Config) error {
	a, err := ParseSMTPAddr(addr)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLoginTimeout)
		defer cancel()
	}
	var conf *tls.Config
	if tlsConf != nil || a.ImplicitTLS {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConf != nil {
			conf = tlsConf.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = a.Host
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.HostPort())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// go-smtp sets its own per-command deadlines; closing the connection
	// when ctx ends is what makes every step honour the caller's deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	var c *smtp.Client
	switch {
	case a.ImplicitTLS:
		tc := tls.Client(conn, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return classify(ctx, "TLS handshake", err)
		}
		c = smtp.NewClient(tc)
	case conf != nil:
		c, err = smtp.NewClientStartTLS(conn, conf)
		if err != nil {
			return classify(ctx, "STARTTLS", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	// Greeting and EHLO (again after STARTTLS, as RFC 3207 requires).
	if err := c.Hello("localhost"); err != nil {
		return classify(ctx, "EHLO", err)
	}
	if !c.SupportsAuth(sasl.Plain) {
		return fmt.Errorf("%w: server does not offer AUTH PLAIN (it may require STARTTLS first)", ErrUnavailable)
	}
	if err := c.Auth(sasl.NewPlainClient("", username, password)); err != nil {
		return classify(ctx, "AUTH", err)
	}
	// The login is proven; a failed QUIT changes nothing about that.
	_ = c.Quit()
	return nil
}

// classify maps a go-smtp error to ErrAuthFailed or ErrUnavailable. Only a
// 535 is a verdict on the credentials; any other refusal (4xx, 530
// encryption required, 504 unknown mechanism) means the login could not be
// tried, so a caller must not conclude the password is wrong.
func classify(ctx context.Context, step string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, step, cerr)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code == 535 {
		return fmt.Errorf("%w: %s: %w", ErrAuthFailed, step, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, step, err)
}
