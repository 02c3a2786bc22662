package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// UserpassLogin is Vault's answer to a userpass login. With login MFA
// enforced it holds no token but an MFA request to complete with
// ValidateMFA; without, it holds the token.
type UserpassLogin struct {
	Token        string
	MFARequestID string
	// MFAConstraints maps each enforcement that applies to the methods any
	// one of which satisfies it.
	MFAConstraints map[string][]MFAMethod
}

// MFAMethod is one login MFA method an MFA request can be completed with.
type MFAMethod struct {
	ID           string
	Type         string // "totp", ...
	UsesPasscode bool
}

// LoginUserpass logs in at auth/<mount>/login/<username>, on behalf of a
// person: the functions' own token is not sent. A wrong username or
// password, or a user Vault's lockout has locked, is ErrInvalidCredentials.
// The password never appears in an error.
func (c *Client) LoginUserpass(ctx context.Context, mount, username, password string) (*UserpassLogin, error) {
	op := "userpass login at " + mount
	// The name becomes part of the request path: nothing in it may leave
	// auth/<mount>/login/.
	if username == "" || username == "." || username == ".." || strings.ContainsAny(username, "/\\?#%") {
		return nil, fmt.Errorf("vault: %s: %w: username not usable in a path", op, ErrBadRequest)
	}
	s, err := c.anon.Logical().WriteWithContext(ctx, "auth/"+mount+"/login/"+username, map[string]any{"password": password})
	if err != nil {
		return nil, classifyLogin(op, err)
	}
	if s == nil || s.Auth == nil {
		return nil, fmt.Errorf("vault: %s: %w: no auth in response", op, ErrUnavailable)
	}
	out := &UserpassLogin{Token: s.Auth.ClientToken}
	if m := s.Auth.MFARequirement; m != nil {
		out.MFARequestID = m.MFARequestID
		out.MFAConstraints = map[string][]MFAMethod{}
		for name, c := range m.MFAConstraints {
			if c == nil {
				continue
			}
			for _, id := range c.Any {
				if id != nil {
					out.MFAConstraints[name] = append(out.MFAConstraints[name], MFAMethod{ID: id.ID, Type: id.Type, UsesPasscode: id.UsesPasscode})
				}
			}
		}
	}
	if out.Token == "" && out.MFARequestID == "" {
		return nil, fmt.Errorf("vault: %s: %w: neither a token nor an MFA request in response", op, ErrUnavailable)
	}
	return out, nil
}

// ValidateMFA completes a login at sys/mfa/validate with one passcode per
// method ID, and returns the login's token. A wrong or reused passcode is
// ErrInvalidCredentials.
func (c *Client) ValidateMFA(ctx context.Context, requestID string, passcodes map[string]string) (string, error) {
	payload := make(map[string]any, len(passcodes))
	for id, code := range passcodes {
		payload[id] = []string{code}
	}
	s, err := c.anon.Sys().MFAValidateWithContext(ctx, requestID, payload)
	if err != nil {
		var re *vaultapi.ResponseError
		// sys/mfa/validate answers 403 to a code that does not validate;
		// a 400 means the request itself was malformed or unknown.
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			return "", fmt.Errorf("vault: mfa validate: %w", ErrInvalidCredentials)
		}
		return "", classify("mfa validate", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return "", fmt.Errorf("vault: mfa validate: %w: no token in response", ErrUnavailable)
	}
	return s.Auth.ClientToken, nil
}

// RevokeSelf revokes token with itself (auth/token/revoke-self, allowed by
// Vault's default policy).
func (c *Client) RevokeSelf(ctx context.Context, token string) error {
	cl := c.anon.WithRequestCallbacks(func(r *vaultapi.Request) { r.ClientToken = token })
	_, err := cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
	return classify("revoke-self", err)
}

// classifyLogin maps a login's refusal to ErrInvalidCredentials: a wrong
// password is a 400, a user locked by Vault's user lockout a 403.
func classifyLogin(op string, err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusForbidden) {
		reason := "refused"
		if re.StatusCode == http.StatusForbidden {
			reason = "permission denied (Vault's user lockout)"
		}
		return fmt.Errorf("vault: %s: %w: %s", op, ErrInvalidCredentials, reason)
	}
	return classify(op, err)
}
