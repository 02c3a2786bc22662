package standin

import (
	"io"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP answers as MailU's front (nginx asking the admin app) does: AUTH
// PLAIN against the instance's users, 535 5.7.8 for bad or disabled
// credentials. Mail is accepted after AUTH and thrown away.

var (
	errAuthInvalid = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errAuthNeeded  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errShutdown    = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Service shutting down"}
)

type smtpBackend struct{ i *Instance }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{i: b.i}, nil
}

type smtpSession struct {
	i      *Instance
	authed bool
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if err := s.i.smtpLogin(identity, username, password); err != nil {
			return err
		}
		s.authed = true
		return nil
	}), nil
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

// smtpLogin checks one AUTH. The password never leaves this function; only
// the outcome is logged.
func (i *Instance) smtpLogin(identity, username, password string) error {
	i.mu.Lock()
	f, stopped := i.faults, i.smtpCtx.Done()
	i.mu.Unlock()
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
	ok := false
	switch {
	case f.RejectSMTP:
	case identity != "" && identity != username:
	default:
		i.mu.Lock()
		u, found := i.users[strings.ToLower(username)]
		var hash string
		enabled := false
		if found {
			hash, enabled = u.PasswordHash, u.Enabled
		}
		i.mu.Unlock()
		ok = enabled && checkPassword(hash, password)
	}
	i.srv.log.Info("mailu smtp auth", "domain", i.domain, "user", username, "ok", ok, "rejected_by_fault", f.RejectSMTP)
	if !ok {
		return errAuthInvalid
	}
	return nil
}
