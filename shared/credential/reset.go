package credential

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"smtp-vault/shared/alert"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/pathseg"
)

// ErrIncidentRequired refuses an emergency reset without a well-formed
// incident id; the refusal raises the emergency_reset_without_incident
// alert.
var ErrIncidentRequired = codedError("incident_id is required", alert.CodeIncidentIDRequired)

// ValidateIncidentID accepts 3 to 64 letters, digits and . _ : -, starting
// with a letter or digit (INC-2026-0042, sec:1234; pathseg.IncidentID);
// the refusal is ErrIncidentRequired.
func ValidateIncidentID(id string) error {
	if err := pathseg.Check(pathseg.IncidentID, id); err != nil {
		return fmt.Errorf("%w: %w", ErrIncidentRequired, err)
	}
	return nil
}

// MaxReasonBytes bounds a free-text reason kept in the audit trail.
const MaxReasonBytes = 500

// ValidateReason accepts one line of at most MaxReasonBytes; required
// refuses an empty one.
func ValidateReason(reason string, required bool) (string, error) {
	r := strings.TrimSpace(reason)
	switch {
	case r == "" && required:
		return "", fmt.Errorf("%w: reason is required", ErrInvalidInput)
	case len(r) > MaxReasonBytes || !utf8.ValidString(r) || strings.ContainsAny(r, "\x00\r\n"):
		return "", fmt.Errorf("%w: reason must be one line of at most %d bytes", ErrInvalidInput, MaxReasonBytes)
	}
	return r, nil
}

// ResetTakeOver is how long an unreleased tenant lock holds off an
// emergency reset: a live change finishes well within it (each MailU and
// SMTP call is bounded by its timeout), so an older holder has crashed.
const ResetTakeOver = time.Minute

// keptResetIncidents bounds the incidents a record remembers.
const keptResetIncidents = 20

// ResetRequest asks for one tenant's emergency reset.
type ResetRequest struct {
	TenantID   string
	IncidentID string
	Reason     string
	Actor      Actor
	// fromResponse is the compromise response that asked (RunResetJob,
	// from a run recorded in Vault), whose start and end alert instead of
	// each tenant's reset.
	fromResponse string
	// index batches the status index writes of the response's chunk.
	index *indexBatch
}

// ResetResult is what an emergency reset did. Password is the new
// password, shown once to the caller; it is empty when AlreadyReset.
type ResetResult struct {
	TenantID           string
	IncidentID         string
	Username           string
	Password           string
	LastRotated        time.Time
	NextRotation       time.Time
	CompromisedVersion int
	Version            int
	// AlreadyReset: this incident reset the credential before; nothing
	// changed and no password is returned. ResetBy is then the compromise
	// response that did it, if one did.
	AlreadyReset bool
	ResetBy      string
}

// EmergencyReset replaces a tenant's password in an incident: a fresh
// 48-byte password is set in MailU through its admin API (the old one is
// not needed), proved with an SMTP AUTH login and promoted with
// check-and-set, after the replaced KV version (and any pending password,
// itself treated as compromised) is marked compromised in custom_metadata.
// It is not held back by the rotation cool-down, and takes over a change
// of the tenant that has held the lock longer than ResetTakeOver. An
// incident resets a credential once: once a password it set was promoted,
// a second call answers AlreadyReset; a reset of it that failed (and was
// rolled back) or crashed is done again.
// The reset is audited (smtp_credentials_emergency_reset, critical) before
// it is promoted, failing closed, and a security alert goes out.
func (s *Service) EmergencyReset(ctx context.Context, req ResetRequest) (res ResetResult, err error) {
	if err := ValidateTenantID(req.TenantID); err != nil {
		return ResetResult{}, err
	}
	if err := ValidateIncidentID(req.IncidentID); err != nil {
		return ResetResult{}, err
	}
	if req.Reason, err = ValidateReason(req.Reason, false); err != nil {
		return ResetResult{}, err
	}
	release, quietSince, err := s.lockOrTakeOver(ctx, req.TenantID, PurposeReset, ResetTakeOver)
	if err != nil {
		return ResetResult{}, err
	}
	defer release()
	rec, err := s.readRecord(ctx, req.TenantID)
	if err != nil {
		return ResetResult{}, err
	}
	rec.index, rec.indexMarked = req.index, req.index.marks(req.TenantID, quietSince)
	// ResetIncidents holds only incidents whose password was promoted
	// (finishSecret); one that failed or crashed is done again.
	if slices.Contains(strings.Split(rec.ResetIncidents, ","), req.IncidentID) {
		s.log.InfoContext(ctx, "emergency reset: already reset for this incident", "tenant_id", req.TenantID, "incident_id", req.IncidentID)
		return ResetResult{TenantID: req.TenantID, IncidentID: req.IncidentID, Username: rec.Username, LastRotated: rec.LastRotatedTime(),
			NextRotation: rec.LastRotatedTime().Add(RotationInterval), Version: rec.Version(), AlreadyReset: true, ResetBy: rec.ResetResponse}, nil
	}
	if rec.Password == "" && rec.PendingMailUURL == "" && !rec.Pending() {
		return ResetResult{}, fmt.Errorf("%w: the credential of tenant %s is still being created", ErrNotFound, req.TenantID)
	}
	// A reset of this incident that set its password in MailU but was not
	// promoted (its login refused, or the run stopped) left it pending.
	if rec.Pending() && rec.PendingPurpose == PurposeReset && rec.CompromisedIncident == req.IncidentID {
		// This incident's reset already set its password in MailU and only
		// its login was refused (or the run stopped): finish that one
		// instead of setting another on the strength of the refusal.
		if res, done, err := s.finishReset(ctx, req, rec); done || err != nil {
			s.markLoginFailing(ctx, req.TenantID, err)
			return res, err
		}
	}
	compromised, wasPending := rec.Version(), rec.Pending()
	if err := s.markCompromised(ctx, req, rec); err != nil {
		return ResetResult{}, err
	}
	// The change's first index write (indexPending) shows the incident; a
	// reset that fails before it shows it here, so that the overview never
	// hides a tenant marked compromised. One that fails before its pending
	// write puts back the state markCompromised set (best effort: the
	// sweep's worker repairs it otherwise).
	defer func() {
		if err == nil {
			return
		}
		s.indexSet(ctx, req.TenantID, func(e *IndexEntry) { e.Compromised = req.IncidentID })
		if rec.Version() == compromised && !wasPending {
			s.patchState(ctx, req.TenantID, map[string]string{MetaState: StateCurrent})
		}
	}()
	username := rec.Username
	if username == "" {
		username = rec.PendingUsername
	}
	// A pending change (a crashed or interrupted rotation, store or move)
	// is dropped, not finished: its password is compromised too. A pending
	// move to new endpoints is dropped with it; the tenant stays where it
	// is.
	rec.clearPending()
	admin, err := s.mailuAdmin(ctx, req.TenantID)
	if err != nil {
		return ResetResult{}, err
	}
	ev := audit.Event{
		Event:     audit.CredentialsEmergencyReset,
		UserID:    req.Actor.UserID,
		IP:        req.Actor.IP,
		UserAgent: req.Actor.UserAgent,
		Severity:  audit.Critical,
		Details:   map[string]any{"incident_id": req.IncidentID, "reason": req.Reason, "compromised_version": compromised},
	}
	if req.fromResponse != "" {
		ev.Details["response_id"] = req.fromResponse
	}
	rec.CompromisedIncident, rec.CompromisedAt, rec.CompromisedVersion = req.IncidentID, FormatTime(s.Now()), strconv.Itoa(compromised)
	if rec.Password != "" {
		rec.CurrentCompromised = req.IncidentID
	}
	rec.PendingResetResponse = req.fromResponse
	pw, err := s.runSteps(ctx, req.TenantID, rec, admin, username, PurposeReset, ev)
	if err != nil {
		s.markLoginFailing(ctx, req.TenantID, err)
		return ResetResult{}, err
	}
	if req.fromResponse == "" {
		s.alertReset(ctx, req, compromised)
	}
	s.log.InfoContext(ctx, "emergency reset", "tenant_id", req.TenantID, "incident_id", req.IncidentID, "kv_version", rec.Version())
	last := rec.LastRotatedTime()
	return ResetResult{TenantID: req.TenantID, IncidentID: req.IncidentID, Username: rec.Username, Password: pw,
		LastRotated: last, NextRotation: last.Add(RotationInterval), CompromisedVersion: compromised, Version: rec.Version()}, nil
}

// finishReset finishes a reset of req's incident whose password MailU
// already holds (its hash says so): the login is proven and the password
// promoted and returned, as the reset that set it would have. done is
// false when MailU does not hold it; the caller then sets a fresh one.
func (s *Service) finishReset(ctx context.Context, req ResetRequest, rec *Record) (ResetResult, bool, error) {
	pw, err := s.open(ctx, req.TenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return ResetResult{}, false, err
	}
	admin, err := s.mailuAdmin(ctx, req.TenantID)
	if err != nil {
		return ResetResult{}, false, err
	}
	held, err := s.holds(ctx, admin, rec.PendingUsername, pw)
	if err != nil || !held {
		return ResetResult{}, false, err
	}
	if err := s.proveLogin(ctx, rec.pendingSMTPAddr(), rec.PendingUsername, pw); err != nil {
		return ResetResult{}, false, err
	}
	compromised, _ := strconv.Atoi(rec.CompromisedVersion)
	ev := audit.Event{
		Event: audit.CredentialsEmergencyReset, UserID: req.Actor.UserID, IP: req.Actor.IP, UserAgent: req.Actor.UserAgent, Severity: audit.Critical,
		Details: map[string]any{"incident_id": req.IncidentID, "reason": req.Reason, "compromised_version": compromised, "resumed": true},
	}
	if req.fromResponse != "" {
		ev.Details["response_id"] = req.fromResponse
	}
	if err := s.finishSecret(ctx, req.TenantID, rec, ev); err != nil {
		return ResetResult{}, false, err
	}
	if req.fromResponse == "" {
		s.alertReset(ctx, req, compromised)
	}
	s.log.InfoContext(ctx, "emergency reset finished", "tenant_id", req.TenantID, "incident_id", req.IncidentID, "kv_version", rec.Version())
	last := rec.LastRotatedTime()
	return ResetResult{TenantID: req.TenantID, IncidentID: req.IncidentID, Username: rec.Username, Password: pw,
		LastRotated: last, NextRotation: last.Add(RotationInterval), CompromisedVersion: compromised, Version: rec.Version()}, true, nil
}

// markCompromised records in custom_metadata, before anything changes,
// that the current KV version (with any pending password in it) is
// compromised: MetaCompromised names the incident for the overview, and a
// per-version key keeps incident, who and when for good. The same patch
// says the reset's change is pending (MetaState), as the status index
// does before the record is written: a reset that stops before its
// pending write leaves the tenant pending there too, and the sweep's
// worker finds the record unchanged and puts the state back (Rotate's
// not-due branch). One patch instead of two, per tenant of a compromise
// response.
func (s *Service) markCompromised(ctx context.Context, req ResetRequest, rec *Record) error {
	by := req.Actor.UserID
	if len(by) > 128 {
		by = by[:128]
	}
	md := map[string]string{
		MetaCompromised:                       req.IncidentID,
		MetaCompromisedVersion(rec.Version()): fmt.Sprintf("incident=%s;by=%s;at=%s;pending=%t", req.IncidentID, by, FormatTime(s.Now()), rec.Pending()),
		MetaState:                             StatePending,
	}
	if err := s.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(req.TenantID), md); err != nil {
		return upstream("mark the credential compromised", err)
	}
	rec.stateMarked = true
	return nil
}

// alertReset sends the security alert of a reset; a failure is logged
// (the reset is done and audited as critical).
func (s *Service) alertReset(ctx context.Context, req ResetRequest, compromised int) {
	if s.cfg.Notifier == nil {
		s.log.WarnContext(ctx, "emergency reset: no notifier configured for the security alert", "tenant_id", req.TenantID)
		return
	}
	err := s.cfg.Notifier.Notify(ctx, notify.Message{
		Kind:     notify.KindSecurityAlert,
		Subject:  fmt.Sprintf("smtp-vault: emergency reset of tenant %s (%s)", req.TenantID, req.IncidentID),
		Body:     fmt.Sprintf("%s reset the MailU admin credential of tenant %s in incident %s; KV version %d is marked compromised. Reason: %s", req.Actor.UserID, req.TenantID, req.IncidentID, compromised, req.Reason),
		TenantID: req.TenantID,
		Attrs:    map[string]string{"rule": "emergency_reset", "incident_id": req.IncidentID, "user_id": req.Actor.UserID, "severity": string(audit.Critical)},
	})
	if err != nil {
		s.log.ErrorContext(ctx, "emergency reset: security alert not sent", "tenant_id", req.TenantID, "error", err)
	}
}

func appendIncident(list, id string) string {
	ids := slices.DeleteFunc(strings.Split(list, ","), func(s string) bool { return s == "" })
	ids = append(ids, id)
	if len(ids) > keptResetIncidents {
		ids = ids[len(ids)-keptResetIncidents:]
	}
	return strings.Join(ids, ",")
}

// LogValue keeps the one-time password out of any log line that names a
// ResetResult.
func (r ResetResult) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant_id", r.TenantID), slog.String("incident_id", r.IncidentID), slog.String("password", "[redacted]"))
}

// String keeps the one-time password out of fmt output.
func (r ResetResult) String() string {
	return fmt.Sprintf("reset{tenant_id=%s incident_id=%s already_reset=%t password=[redacted]}", r.TenantID, r.IncidentID, r.AlreadyReset)
}

// GoString keeps the password out of %#v, which does not use String.
func (r ResetResult) GoString() string { return r.String() }
