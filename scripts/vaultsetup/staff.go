package vaultsetup

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/reauth"
)

// Recorder records audit events (shared/audit's Recorder).
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Staff manages the members of staff who re-authenticate in Vault. A
// member is a userpass user named after the subject (sub) of their bearer
// tokens, an identity entity staff-<name> with an alias on the userpass
// mount, and a TOTP secret on that entity. Their role is recorded on the
// entity for the operator's eyes only: what a request may do comes from
// the identity provider's token. Every change is audited, and fails
// closed: an action whose record cannot be written is reported as failed
// after it was made, and the caller must say so.
type Staff struct {
	Vault        *vaultapi.Client // a token with the smtp-vault-staff-admin policy
	TOTPMethodID string           // the TOTP login MFA method (TOTPMethodID, Report.TOTPMethodID)
	Audit        Recorder
	// Attempts reaches the failed re-authentication records (Unlock), in
	// AttemptsMount (default smtp-access).
	Attempts      reauth.KV
	AttemptsMount string
	// By names who acts, for the audit records (user_id).
	By  string
	Now func() time.Time
}

// Member is one member of staff as Vault holds them.
type Member struct {
	Name     string
	Role     auth.Role
	Disabled bool
	// TOTPEnrolled is when their current TOTP secret was made; zero when
	// they have none (they cannot re-authenticate).
	TOTPEnrolled time.Time
}

// Enrolment is what a member needs to add their TOTP secret to an
// authenticator app. It holds the secret: show it to them once, never log
// it.
type Enrolment struct {
	URL    string // otpauth://totp/...
	Secret string // base32, the URL's secret parameter
}

// Errors of staff administration.
var (
	ErrNoMember     = errors.New("vaultsetup: no such member of staff")
	ErrMemberExists = errors.New("vaultsetup: already a member of staff")
	ErrBadName      = errors.New("vaultsetup: not a usable staff name")
)

// Audit events of staff administration, on the platform chain.
const (
	EventStaffAdded     = "staff_added"
	EventStaffDisabled  = "staff_disabled"
	EventStaffEnabled   = "staff_enabled"
	EventStaffRemoved   = "staff_removed"
	EventStaffTOTPReset = "staff_totp_reset"
	EventStaffListed    = "staff_listed"
	// EventStaffReauthUnlocked: a member's re-authentication hold (the
	// daily cap of shared/reauth) was lifted.
	EventStaffReauthUnlocked = "staff_reauth_unlocked"
)

// CheckName normalises a staff name (lower case) and refuses one that
// cannot be a userpass name.
func CheckName(name string) (string, error) {
	// A staff name is the JWT subject; it becomes part of Vault paths
	// (pathseg.StaffName), and Vault lower-cases userpass names.
	n := strings.ToLower(name)
	if err := pathseg.Check(pathseg.StaffName, n); err != nil {
		return "", fmt.Errorf("%w: %q (%w)", ErrBadName, truncate(name, 140), err)
	}
	return n, nil
}

func checkRole(r auth.Role) error {
	if r != auth.RoleSupport && r != auth.RolePlatformAdmin {
		return fmt.Errorf("vaultsetup: role %q: want %s or %s", r, auth.RoleSupport, auth.RolePlatformAdmin)
	}
	return nil
}

// Add makes name a member of staff with role and password, and enrols a
// new TOTP secret for them.
func (s *Staff) Add(ctx context.Context, name string, role auth.Role, password string) (Enrolment, error) {
	name, err := CheckName(name)
	if err != nil {
		return Enrolment{}, err
	}
	if err := checkRole(role); err != nil {
		return Enrolment{}, err
	}
	exists, err := s.userExists(ctx, name)
	if err != nil {
		return Enrolment{}, err
	}
	if exists {
		return Enrolment{}, fmt.Errorf("%w: %s (use reset-totp, or remove first)", ErrMemberExists, name)
	}
	if err := s.writeUser(ctx, name, password); err != nil {
		return Enrolment{}, err
	}
	id, err := s.entity(ctx, name, role, true)
	if err != nil {
		return Enrolment{}, err
	}
	enr, err := s.enrol(ctx, name, id)
	if err != nil {
		return Enrolment{}, err
	}
	return enr, s.record(ctx, EventStaffAdded, audit.Warning, name, map[string]any{"role": string(role)})
}

// Ensure makes name a member of staff with role and password whatever
// Vault held before, keeping their TOTP secret when Vault has one and
// knownSecret (the caller's copy of it) is not empty; otherwise it enrols
// a new one. It returns the secret in force. The local stack seeds its
// demo admins with it; it audits only what it changed.
func (s *Staff) Ensure(ctx context.Context, name string, role auth.Role, password, knownSecret string) (string, error) {
	name, err := CheckName(name)
	if err != nil {
		return "", err
	}
	if err := checkRole(role); err != nil {
		return "", err
	}
	existed, err := s.userExists(ctx, name)
	if err != nil {
		return "", err
	}
	if err := s.writeUser(ctx, name, password); err != nil {
		return "", err
	}
	id, err := s.entity(ctx, name, role, false)
	if err != nil {
		return "", err
	}
	if s.hasTOTP(ctx, name) && knownSecret != "" {
		if !existed {
			return knownSecret, s.record(ctx, EventStaffAdded, audit.Warning, name, map[string]any{"role": string(role)})
		}
		return knownSecret, nil
	}
	enr, err := s.enrol(ctx, name, id)
	if err != nil {
		return "", err
	}
	event := EventStaffTOTPReset
	if !existed {
		event = EventStaffAdded
	}
	return enr.Secret, s.record(ctx, event, audit.Warning, name, map[string]any{"role": string(role)})
}

// ResetTOTP replaces name's TOTP secret (a lost phone): the old one stops
// working at once.
func (s *Staff) ResetTOTP(ctx context.Context, name string) (Enrolment, error) {
	name, id, err := s.member(ctx, name)
	if err != nil {
		return Enrolment{}, err
	}
	enr, err := s.enrol(ctx, name, id)
	if err != nil {
		return Enrolment{}, err
	}
	return enr, s.record(ctx, EventStaffTOTPReset, audit.Warning, name, nil)
}

// Disable stops name from re-authenticating (Vault refuses every login
// of a disabled entity) and keeps everything else; Enable undoes it.
func (s *Staff) Disable(ctx context.Context, name string) error {
	return s.setDisabled(ctx, name, true)
}

// Enable lets a disabled member re-authenticate again.
func (s *Staff) Enable(ctx context.Context, name string) error {
	return s.setDisabled(ctx, name, false)
}

func (s *Staff) setDisabled(ctx context.Context, name string, disabled bool) error {
	name, _, err := s.member(ctx, name)
	if err != nil {
		return err
	}
	ent, err := s.readEntity(ctx, name)
	if err != nil {
		return err
	}
	if _, err := s.Vault.Logical().WriteWithContext(ctx, "identity/entity/name/"+entityName(name), map[string]any{
		"metadata": ent.metadata,
		"disabled": disabled,
	}); err != nil {
		return fmt.Errorf("vaultsetup: set disabled=%v on %s: %w", disabled, name, err)
	}
	event, sev := EventStaffEnabled, audit.Warning
	if disabled {
		event = EventStaffDisabled
	}
	return s.record(ctx, event, sev, name, nil)
}

// Remove deletes name's TOTP secret, userpass user and entity. Their audit
// trail stays.
func (s *Staff) Remove(ctx context.Context, name string) error {
	name, id, err := s.member(ctx, name)
	if err != nil {
		return err
	}
	if id != "" {
		if err := s.destroyTOTP(ctx, id); err != nil {
			return err
		}
	}
	if _, err := s.Vault.Logical().DeleteWithContext(ctx, s.userPath(name)); err != nil {
		return fmt.Errorf("vaultsetup: delete userpass user %s: %w", name, err)
	}
	if id != "" {
		if _, err := s.Vault.Logical().DeleteWithContext(ctx, "identity/entity/name/"+entityName(name)); err != nil {
			return fmt.Errorf("vaultsetup: delete entity of %s: %w", name, err)
		}
	}
	return s.record(ctx, EventStaffRemoved, audit.Warning, name, nil)
}

// List returns every member of staff, by name.
func (s *Staff) List(ctx context.Context) ([]Member, error) {
	l, err := s.Vault.Logical().ListWithContext(ctx, "auth/"+UserpassMount+"/users")
	if err != nil {
		return nil, fmt.Errorf("vaultsetup: list userpass users: %w", err)
	}
	var out []Member
	for _, n := range stringsOf(dataOf(l)["keys"]) {
		m := Member{Name: n}
		ent, err := s.readEntity(ctx, n)
		if err != nil && !errors.Is(err, ErrNoMember) {
			return nil, err
		}
		if err == nil {
			m.Role = auth.Role(ent.metadata["role"])
			m.Disabled = ent.disabled
			m.TOTPEnrolled, _ = time.Parse(time.RFC3339, ent.metadata["totp_enrolled_at"])
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out, s.record(ctx, EventStaffListed, audit.Info, "", map[string]any{"members": len(out)})
}

func (s *Staff) userPath(name string) string {
	return "auth/" + UserpassMount + "/users/" + pathseg.Must(pathseg.StaffName, name)
}

func entityName(name string) string { return "staff-" + pathseg.Must(pathseg.StaffName, name) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *Staff) userExists(ctx context.Context, name string) (bool, error) {
	u, err := s.Vault.Logical().ReadWithContext(ctx, s.userPath(name))
	if err != nil {
		return false, fmt.Errorf("vaultsetup: read userpass user %s: %w", name, err)
	}
	return u != nil, nil
}

// writeUser sets name's password. Their Vault token is only ever the
// proof of a re-authentication (the reauth function revokes it at once):
// it lives a minute and carries no policy beyond Vault's default.
func (s *Staff) writeUser(ctx context.Context, name, password string) error {
	if password == "" {
		return fmt.Errorf("vaultsetup: userpass user %s: empty password", name)
	}
	if _, err := s.Vault.Logical().WriteWithContext(ctx, s.userPath(name), map[string]any{
		"password":      password,
		"token_ttl":     "1m",
		"token_max_ttl": "1m",
	}); err != nil {
		// Vault's error text never holds the request body.
		return fmt.Errorf("vaultsetup: write userpass user %s: %w", name, err)
	}
	return nil
}

// member normalises name and returns the id of its entity ("" when the
// userpass user has none); ErrNoMember when there is no userpass user.
func (s *Staff) member(ctx context.Context, name string) (string, string, error) {
	name, err := CheckName(name)
	if err != nil {
		return "", "", err
	}
	exists, err := s.userExists(ctx, name)
	if err != nil {
		return "", "", err
	}
	if !exists {
		return "", "", fmt.Errorf("%w: %s", ErrNoMember, name)
	}
	ent, err := s.readEntity(ctx, name)
	if errors.Is(err, ErrNoMember) {
		return name, "", nil
	}
	if err != nil {
		return "", "", err
	}
	return name, ent.id, nil
}

type entityState struct {
	id       string
	disabled bool
	metadata map[string]string
}

func (s *Staff) readEntity(ctx context.Context, name string) (entityState, error) {
	e, err := s.Vault.Logical().ReadWithContext(ctx, "identity/entity/name/"+entityName(name))
	if err != nil {
		return entityState{}, fmt.Errorf("vaultsetup: read entity of %s: %w", name, err)
	}
	if e == nil {
		return entityState{}, fmt.Errorf("%w: %s has no entity", ErrNoMember, name)
	}
	d := dataOf(e)
	st := entityState{metadata: map[string]string{}}
	st.id, _ = d["id"].(string)
	st.disabled, _ = d["disabled"].(bool)
	if md, ok := d["metadata"].(map[string]any); ok {
		for k, v := range md {
			st.metadata[k] = fmt.Sprint(v)
		}
	}
	return st, nil
}

// entity makes sure name has an entity with an alias on the userpass
// mount, recording role on it, and returns its id. A re-run keeps the
// entity's disabled flag unless enable is set.
func (s *Staff) entity(ctx context.Context, name string, role auth.Role, enable bool) (string, error) {
	cur, err := s.readEntity(ctx, name)
	if err != nil && !errors.Is(err, ErrNoMember) {
		return "", err
	}
	md := cur.metadata
	if md == nil {
		md = map[string]string{}
	}
	md["smtp_vault"], md["role"] = "staff", string(role)
	body := map[string]any{"metadata": md}
	if enable {
		body["disabled"] = false
	}
	if _, err := s.Vault.Logical().WriteWithContext(ctx, "identity/entity/name/"+entityName(name), body); err != nil {
		return "", fmt.Errorf("vaultsetup: write entity of %s: %w", name, err)
	}
	e, err := s.Vault.Logical().ReadWithContext(ctx, "identity/entity/name/"+entityName(name))
	if err != nil || e == nil {
		return "", fmt.Errorf("vaultsetup: read entity of %s: %w", name, err)
	}
	id, _ := dataOf(e)["id"].(string)
	accessor, err := s.userpassAccessor(ctx)
	if err != nil {
		return "", err
	}
	aliases, _ := dataOf(e)["aliases"].([]any)
	if slices.ContainsFunc(aliases, func(a any) bool {
		m, _ := a.(map[string]any)
		return m["mount_accessor"] == accessor
	}) {
		return id, nil
	}
	// An alias left on another entity (made by a login before this
	// entity existed) would route name's logins there: move it here.
	found, err := s.Vault.Logical().WriteWithContext(ctx, "identity/lookup/entity", map[string]any{
		"alias_name":           name,
		"alias_mount_accessor": accessor,
	})
	if err != nil {
		return "", fmt.Errorf("vaultsetup: look up the entity of %s: %w", name, err)
	}
	if other, _ := dataOf(found)["id"].(string); other != "" && other != id {
		return "", fmt.Errorf("vaultsetup: the userpass login %s already belongs to entity %s: remove that alias first", name, other)
	}
	if _, err := s.Vault.Logical().WriteWithContext(ctx, "identity/entity-alias", map[string]any{
		"name":           name,
		"canonical_id":   id,
		"mount_accessor": accessor,
	}); err != nil {
		return "", fmt.Errorf("vaultsetup: write the userpass alias of %s: %w", name, err)
	}
	return id, nil
}

func (s *Staff) userpassAccessor(ctx context.Context) (string, error) {
	auths, err := s.Vault.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("vaultsetup: list auth methods: %w", err)
	}
	m, ok := auths[UserpassMount+"/"]
	if !ok {
		return "", fmt.Errorf("vaultsetup: no auth method at %s/: run vault-setup first", UserpassMount)
	}
	return m.Accessor, nil
}

// hasTOTP reports whether name's entity holds a TOTP secret. Vault has no
// read for it; the entity's metadata records the enrolment.
func (s *Staff) hasTOTP(ctx context.Context, name string) bool {
	ent, err := s.readEntity(ctx, name)
	return err == nil && ent.metadata["totp_enrolled_at"] != ""
}

// enrol gives the entity a new TOTP secret, replacing any it had, and
// stamps the entity's metadata.
func (s *Staff) enrol(ctx context.Context, name, entityID string) (Enrolment, error) {
	if s.TOTPMethodID == "" {
		return Enrolment{}, errors.New("vaultsetup: no TOTP method id: run vault-setup first")
	}
	if err := s.destroyTOTP(ctx, entityID); err != nil {
		return Enrolment{}, err
	}
	g, err := s.Vault.Logical().WriteWithContext(ctx, "identity/mfa/method/totp/admin-generate", map[string]any{
		"method_id": s.TOTPMethodID,
		"entity_id": entityID,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("vaultsetup: generate the TOTP secret of %s: %w", name, err)
	}
	raw, _ := dataOf(g)["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || raw == "" || u.Query().Get("secret") == "" {
		// Vault answers with a warning and no secret when the entity
		// has one already.
		return Enrolment{}, fmt.Errorf("vaultsetup: generate the TOTP secret of %s: no otpauth URL in the answer", name)
	}
	// Vault labels the key with the entity's id; an authenticator app
	// shows the label, so name the member there instead.
	u.Path = "/smtp-vault:" + name
	ent, err := s.readEntity(ctx, name)
	if err != nil {
		return Enrolment{}, err
	}
	ent.metadata["totp_enrolled_at"] = s.now().UTC().Format(time.RFC3339)
	if _, err := s.Vault.Logical().WriteWithContext(ctx, "identity/entity/name/"+entityName(name), map[string]any{"metadata": ent.metadata}); err != nil {
		return Enrolment{}, fmt.Errorf("vaultsetup: stamp the TOTP enrolment of %s: %w", name, err)
	}
	return Enrolment{URL: u.String(), Secret: u.Query().Get("secret")}, nil
}

func (s *Staff) destroyTOTP(ctx context.Context, entityID string) error {
	if _, err := s.Vault.Logical().WriteWithContext(ctx, "identity/mfa/method/totp/admin-destroy", map[string]any{
		"method_id": s.TOTPMethodID,
		"entity_id": entityID,
	}); err != nil {
		return fmt.Errorf("vaultsetup: destroy the TOTP secret of entity %s: %w", entityID, err)
	}
	return nil
}

func (s *Staff) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Unlock lifts the hold the daily cap of failed re-authentications put on
// name (and forgets their failed attempts); audited whether or not they
// were held. It reports whether they were.
func (s *Staff) Unlock(ctx context.Context, name string) (bool, error) {
	name, err := CheckName(name)
	if err != nil {
		return false, err
	}
	if s.Attempts == nil {
		return false, errors.New("vaultsetup: unlock needs the attempt records (Staff.Attempts)")
	}
	held, err := reauth.Lift(ctx, s.Attempts, s.AttemptsMount, name, s.now())
	if err != nil {
		return false, fmt.Errorf("vaultsetup: unlock %s: %w", name, err)
	}
	return held, s.record(ctx, EventStaffReauthUnlocked, audit.Warning, name, map[string]any{"was_held": held})
}

// record audits a staff action on the platform chain.
func (s *Staff) record(ctx context.Context, event string, sev audit.Severity, member string, details map[string]any) error {
	if s.Audit == nil {
		return fmt.Errorf("vaultsetup: %s of %s was done but not audited: no recorder", event, member)
	}
	d := map[string]any{}
	if member != "" {
		d["staff_user"] = member
	}
	for k, v := range details {
		d[k] = v
	}
	if err := s.Audit.Record(ctx, audit.Event{Event: event, UserID: s.By, Severity: sev, Details: d}); err != nil {
		return fmt.Errorf("vaultsetup: %s of %s was done but its audit record failed: %w", event, member, err)
	}
	return nil
}
