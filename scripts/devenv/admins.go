package devenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// configureLoginMFA sets up what staff re-authenticate against: the
// userpass method for their passwords, a TOTP login MFA method, and its
// enforcement on every userpass login, so that a password alone never
// yields a Vault token. Every step is idempotent.
func (v *Vault) configureLoginMFA(ctx context.Context) error {
	c := v.root
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list auth methods: %w", err)
	}
	if _, ok := auths[UserpassMount+"/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, UserpassMount, &vaultapi.EnableAuthOptions{Type: "userpass", Description: "staff passwords, for re-authentication"}); err != nil {
			return fmt.Errorf("enable userpass: %w", err)
		}
	}
	// Writing a method with an existing method_name updates that method.
	s, err := c.Logical().WriteWithContext(ctx, "identity/mfa/method/totp", map[string]any{
		"method_name":             TOTPMethodName,
		"issuer":                  "smtp-vault",
		"period":                  30,
		"digits":                  6,
		"algorithm":               "SHA1",
		"key_size":                20,
		"skew":                    1,
		"max_validation_attempts": 5,
	})
	if err != nil {
		return fmt.Errorf("write TOTP method: %w", err)
	}
	if s != nil && s.Data != nil {
		v.TOTPMethodID, _ = s.Data["method_id"].(string)
	}
	if v.TOTPMethodID == "" {
		return errors.New("write TOTP method: no method_id in the answer")
	}
	if _, err := c.Logical().WriteWithContext(ctx, "identity/mfa/login-enforcement/"+MFAEnforcement, map[string]any{
		"mfa_method_ids":    []string{v.TOTPMethodID},
		"auth_method_types": []string{"userpass"},
	}); err != nil {
		return fmt.Errorf("write login MFA enforcement: %w", err)
	}
	return nil
}

// EnsureAdmin makes name a member of staff who can re-authenticate: a
// userpass user with password (whose Vault token, only ever the proof of
// a re-authentication, lives one minute with the default policy), an
// identity entity with an alias on the userpass mount, and a TOTP secret
// on that entity. It keeps totpSecret when Vault already holds a secret
// for the entity and totpSecret is not empty; otherwise it generates one.
// It returns the secret in force. The userpass username is the subject
// of the admin's bearer tokens.
func (v *Vault) EnsureAdmin(ctx context.Context, name, password, totpSecret string) (string, error) {
	c := v.root
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+UserpassMount+"/users/"+name, map[string]any{
		"password":       password,
		"token_ttl":      "1m",
		"token_max_ttl":  "1m",
		"token_policies": []string{},
	}); err != nil {
		return "", fmt.Errorf("write userpass user %s: %w", name, err)
	}
	entityID, err := v.entityFor(ctx, name)
	if err != nil {
		return "", err
	}
	gen := func() (*vaultapi.Secret, error) {
		return c.Logical().WriteWithContext(ctx, "identity/mfa/method/totp/admin-generate", map[string]any{
			"method_id": v.TOTPMethodID,
			"entity_id": entityID,
		})
	}
	s, err := gen()
	if err != nil {
		return "", fmt.Errorf("generate TOTP secret of %s: %w", name, err)
	}
	if s == nil || s.Data == nil {
		// Vault answers with a warning and no secret when the entity has
		// one already.
		if totpSecret != "" {
			return totpSecret, nil
		}
		if _, err := c.Logical().WriteWithContext(ctx, "identity/mfa/method/totp/admin-destroy", map[string]any{
			"method_id": v.TOTPMethodID,
			"entity_id": entityID,
		}); err != nil {
			return "", fmt.Errorf("replace the unknown TOTP secret of %s: %w", name, err)
		}
		if s, err = gen(); err != nil || s == nil || s.Data == nil {
			return "", fmt.Errorf("generate TOTP secret of %s: %w", name, err)
		}
	}
	raw, _ := s.Data["url"].(string)
	u, err := url.Parse(raw)
	secret := ""
	if err == nil {
		secret = u.Query().Get("secret")
	}
	if secret == "" {
		return "", fmt.Errorf("generate TOTP secret of %s: no otpauth URL with a secret in the answer", name)
	}
	return secret, nil
}

// entityFor returns the entity that name's userpass logins map to,
// creating the entity and its alias when there is none.
func (v *Vault) entityFor(ctx context.Context, name string) (string, error) {
	c := v.root
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("list auth methods: %w", err)
	}
	mount, ok := auths[UserpassMount+"/"]
	if !ok {
		return "", fmt.Errorf("no %s auth method", UserpassMount)
	}
	found, err := c.Logical().WriteWithContext(ctx, "identity/lookup/entity", map[string]any{
		"alias_name":           strings.ToLower(name),
		"alias_mount_accessor": mount.Accessor,
	})
	if err != nil {
		return "", fmt.Errorf("look up the entity of %s: %w", name, err)
	}
	if found != nil && found.Data != nil {
		if id, _ := found.Data["id"].(string); id != "" {
			return id, nil
		}
	}
	entityName := "staff-" + name
	if _, err := c.Logical().WriteWithContext(ctx, "identity/entity/name/"+entityName, map[string]any{
		"metadata": map[string]string{"smtp_vault": "staff"},
	}); err != nil {
		return "", fmt.Errorf("write entity %s: %w", entityName, err)
	}
	e, err := c.Logical().ReadWithContext(ctx, "identity/entity/name/"+entityName)
	if err != nil || e == nil || e.Data == nil {
		return "", fmt.Errorf("read entity %s: %w", entityName, err)
	}
	id, _ := e.Data["id"].(string)
	aliases, _ := e.Data["aliases"].([]any)
	if !slices.ContainsFunc(aliases, func(a any) bool {
		m, _ := a.(map[string]any)
		return m["mount_accessor"] == mount.Accessor
	}) {
		if _, err := c.Logical().WriteWithContext(ctx, "identity/entity-alias", map[string]any{
			"name":           strings.ToLower(name),
			"canonical_id":   id,
			"mount_accessor": mount.Accessor,
		}); err != nil {
			return "", fmt.Errorf("write the userpass alias of %s: %w", name, err)
		}
	}
	return id, nil
}
