// Package alert evaluates the security alert rules (SPEC section 7) on
// every audit event as it is written, keeping the rules' state in a Vault
// KV v2 mount with check-and-set so that every function instance counts
// the same events, and delivers each alert once per burst through a
// notify.Notifier (SNS in AWS, the local sink locally). template.yaml
// expresses the same rules as CloudWatch metric filters and alarms.
package alert

import (
	"time"

	"smtp-vault/shared/audit"
)

// Rule names, as they appear in notifications and in template.yaml.
const (
	// RuleAccessBurst: more than AccessLimit credential accesses by one
	// user within AccessWindow.
	RuleAccessBurst = "credential_access_burst"
	// RuleNightAccess: a credential access between NightStartHour and
	// NightEndHour UTC.
	RuleNightAccess = "credential_access_at_night"
	// RuleResetWithoutIncident: an emergency reset asked for or done
	// without an incident id.
	RuleResetWithoutIncident = "emergency_reset_without_incident"
	// RuleAuthFailures: more than AuthFailureLimit failed authentications
	// by one user (or, without a user, from one IP) within
	// AuthFailureWindow.
	RuleAuthFailures = "authentication_failures"
)

// The thresholds of the rules.
const (
	AccessLimit       = 5
	AccessWindow      = time.Hour
	AuthFailureLimit  = 3
	AuthFailureWindow = 5 * time.Minute
	NightStartHour    = 22
	NightEndHour      = 6
)

// CodeIncidentIDRequired is the error code the emergency-reset function
// answers a request without incident_id with. The API guard audits that
// refusal as request_rejected with details.code set to it, which is what
// RuleResetWithoutIncident watches for.
const CodeIncidentIDRequired = "incident_id_required"

// EmergencyResetAction is the function name the guard records as
// details.action for emergency-reset requests.
const EmergencyResetAction = "emergency-reset"

// threshold is a rule that fires when more than limit matching events of
// one key fall within window.
type threshold struct {
	rule   string
	limit  int
	window time.Duration
	match  func(audit.Event) bool
}

var thresholds = []threshold{
	{RuleAccessBurst, AccessLimit, AccessWindow, isAccess},
	{RuleAuthFailures, AuthFailureLimit, AuthFailureWindow, func(e audit.Event) bool { return e.Event == audit.AuthenticationFailed }},
}

func isAccess(e audit.Event) bool { return e.Event == audit.CredentialsAccessed }

// atNight reports whether t falls in the night window (UTC), and names the
// night by the date it began on.
func atNight(t time.Time) (string, bool) {
	t = t.UTC()
	switch h := t.Hour(); {
	case h >= NightStartHour:
		return t.Format(time.DateOnly), true
	case h < NightEndHour:
		return t.AddDate(0, 0, -1).Format(time.DateOnly), true
	}
	return "", false
}

// resetWithoutIncident reports whether e is an emergency reset (done or
// refused for that reason) that names no incident.
func resetWithoutIncident(e audit.Event) bool {
	switch e.Event {
	case audit.CredentialsEmergencyReset, audit.CompromiseResponse:
		id, _ := e.Details["incident_id"].(string)
		return id == ""
	case audit.RequestRejected:
		return e.Details["action"] == EmergencyResetAction && e.Details["code"] == CodeIncidentIDRequired
	}
	return false
}
