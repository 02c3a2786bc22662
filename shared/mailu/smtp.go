package mailu

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultLoginTimeout bounds VerifyLogin when ctx has no deadline.
const DefaultLoginTimeout = 30 * time.Second

// VerifyLogin proves that username and password log in to the SMTP server
// at addr (host:port): it connects, says EHLO, authenticates with AUTH PLAIN
// and quits. It returns nil on success, an error wrapping ErrAuthFailed when
// the server rejects the credentials (535), and one wrapping ErrUnavailable
// for anything that says nothing about the credentials (refused connection,
// timeout, 4xx, no AUTH PLAIN, a TLS failure).
//
// With tlsConf set, the session is upgraded with STARTTLS before AUTH and a
// server that does not offer STARTTLS is refused: the password is never sent
// in clear to a server the caller expected to speak TLS. An empty
// tlsConf.ServerName is taken from addr. With tlsConf nil the login is in
// clear, which is only meant for loopback.
func VerifyLogin(ctx context.Context, addr, username, password string, tlsConf *tls.Config) error {
	if err := verifyLogin(ctx, addr, username, password, tlsConf); err != nil {
		return fmt.Errorf("mailu: SMTP login as %s at %s: %w", username, addr, err)
	}
	return nil
}

func verifyLogin(ctx context.Context, addr, username, password string, tlsConf *tls.Config) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLoginTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// go-smtp sets its own per-command deadlines; closing the connection
	// when ctx ends is what makes every step honour the caller's deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	var c *smtp.Client
	if tlsConf != nil {
		conf := tlsConf.Clone()
		if conf.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				conf.ServerName = host
			}
		}
		c, err = smtp.NewClientStartTLS(conn, conf)
		if err != nil {
			return classify(ctx, "STARTTLS", err)
		}
	} else {
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
