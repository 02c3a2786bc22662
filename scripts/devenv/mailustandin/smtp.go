package mailustandin

import (
	"io"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The instance's own SMTP AUTH listener answers as MailU 2024.06's front
// does (535 5.7.8 for every refusal, the rate limit included) without
// being that front: the local stacks put real Dovecot in front of the
// internal auth endpoint instead (scripts/devenv/dovecot). Mail is
// accepted after AUTH and thrown away.

var (
	errAuthInvalid = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errAuthNeeded  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errShutdown    = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Service shutting down"}
)

type smtpBackend struct{ i *Instance }

func (b smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := ""
	if host, _, err := net.SplitHostPort(c.Conn().RemoteAddr().String()); err == nil {
		ip = host
	}
	return &smtpSession{i: b.i, ip: ip}, nil
}

type smtpSession struct {
	i      *Instance
	ip     string // the client's address, which MailU's limits count
	authed bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	login := func(identity, username, password string) error {
		if err := s.i.smtpLogin(s.ip, identity, username, password); err != nil {
			return err
		}
		s.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(login), nil
	case sasl.Login:
		return &loginServer{auth: func(u, p string) error { return login("", u, p) }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// server asks "Username:" then "Password:". MailU's front offers it beside
// PLAIN, and many mail clients use it; go-sasl has only its client side.
type loginServer struct {
	step     int
	username string
	auth     func(username, password string) error
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if response == nil { // no initial response: ask for it
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.auth(l.username, string(response))
	}
	return nil, true, errAuthInvalid
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return errAuthNeeded
	}
	return nil
}

func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// smtpLogin checks one AUTH from ip with the admin app's verdict
// (auth.go), answering as the front does: 535 for every refusal, the rate
// limit included.
func (i *Instance) smtpLogin(ip, identity, username, password string) error {
	i.mu.Lock()
	f, stopped := i.faults, i.smtpCtx.Done()
	i.mu.Unlock()
	if f.Down {
		// The fault may land between the session's EHLO and its AUTH.
		return errShutdown
	}
	if f.Delay > 0 {
		// go-smtp gives no signal when the client hangs up mid-command;
		// the wait ends early only when the instance stops.
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stopped:
			return errShutdown
		}
	}
	if identity != "" && identity != username {
		return errAuthInvalid
	}
	if !i.authenticate(authRequest{user: username, password: password, clientIP: ip}).ok {
		return errAuthInvalid
	}
	return nil
}
