package vaultsetup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// totpSettings are the TOTP login MFA method's settings: the authenticator
// apps' defaults (30 s, 6 digits, SHA1), one step of clock skew, and
// Vault's own limit of wrong codes in a row.
var totpSettings = map[string]any{
	"issuer":                  "smtp-vault",
	"period":                  30,
	"digits":                  6,
	"algorithm":               "SHA1",
	"key_size":                20,
	"skew":                    1,
	"max_validation_attempts": 5,
}

// loginMFA sets up what staff re-authenticate against: the userpass
// method for their passwords, a TOTP login MFA method, and its enforcement
// on every userpass login, so that a password alone never yields a token.
func (s *setup) loginMFA(ctx context.Context) error {
	if err := s.authMethod(ctx, UserpassMount, "userpass", "staff passwords, for re-authentication"); err != nil {
		return err
	}
	id, cur, err := findTOTPMethod(ctx, s.c, TOTPMethod)
	if err != nil {
		return err
	}
	var diff []string
	for k, v := range totpSettings {
		if cur != nil && fmt.Sprint(cur[k]) != fmt.Sprint(v) {
			diff = append(diff, fmt.Sprintf("%s %v, want %v", k, cur[k], v))
		}
	}
	slices.Sort(diff)
	what := "TOTP login MFA method " + TOTPMethod
	if err := s.reconcile(what, cur != nil, strings.Join(diff, "; "), func() error {
		body := map[string]any{"method_name": TOTPMethod}
		for k, v := range totpSettings {
			body[k] = v
		}
		path := "identity/mfa/method/totp"
		if id != "" {
			path += "/" + id
		}
		resp, err := s.c.Logical().WriteWithContext(ctx, path, body)
		if err != nil {
			return err
		}
		if got, _ := dataOf(resp)["method_id"].(string); got != "" {
			id = got
		}
		return nil
	}); err != nil {
		return err
	}
	if id == "" {
		if id, _, err = findTOTPMethod(ctx, s.c, TOTPMethod); err != nil || id == "" {
			return fmt.Errorf("vaultsetup: %s: no method id after writing it: %w", what, err)
		}
	}
	s.r.TOTPMethodID = id
	return s.enforcement(ctx, id)
}

// TOTPMethodID returns the id of the staff's TOTP login MFA method, as
// the staff command needs it.
func TOTPMethodID(ctx context.Context, c *vaultapi.Client) (string, error) {
	id, _, err := findTOTPMethod(ctx, c, TOTPMethod)
	if err == nil && id == "" {
		err = fmt.Errorf("vaultsetup: no TOTP method %s: run vault-setup first", TOTPMethod)
	}
	return id, err
}

// findTOTPMethod returns the id and settings of the TOTP method called
// name; "" and nil when there is none.
func findTOTPMethod(ctx context.Context, c *vaultapi.Client, name string) (string, map[string]any, error) {
	list, err := c.Logical().ListWithContext(ctx, "identity/mfa/method/totp")
	if err != nil {
		return "", nil, fmt.Errorf("vaultsetup: list TOTP methods: %w", err)
	}
	info, _ := dataOf(list)["key_info"].(map[string]any)
	for id, v := range info {
		m, _ := v.(map[string]any)
		if m["name"] == name || m["method_name"] == name {
			return id, m, nil
		}
	}
	return "", nil, nil
}

// enforcement requires the TOTP method on every userpass login.
func (s *setup) enforcement(ctx context.Context, methodID string) error {
	if methodID == "" {
		return errors.New("vaultsetup: login MFA enforcement needs the TOTP method's id")
	}
	path := "identity/mfa/login-enforcement/" + MFAEnforcement
	cur, err := s.c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return fmt.Errorf("vaultsetup: read %s: %w", path, err)
	}
	var diff []string
	have := dataOf(cur)
	if ids := stringsOf(have["mfa_method_ids"]); cur != nil && !sameSet(ids, []string{methodID}) {
		diff = append(diff, fmt.Sprintf("mfa_method_ids %v, want [%s]", ids, methodID))
	}
	if types := stringsOf(have["auth_method_types"]); cur != nil && !sameSet(types, []string{"userpass"}) {
		diff = append(diff, fmt.Sprintf("auth_method_types %v, want [userpass]", types))
	}
	return s.reconcile("login MFA enforcement "+MFAEnforcement+" (every userpass login)", cur != nil, strings.Join(diff, "; "), func() error {
		_, err := s.c.Logical().WriteWithContext(ctx, path, map[string]any{
			"mfa_method_ids":    []string{methodID},
			"auth_method_types": []string{"userpass"},
		})
		return err
	})
}
