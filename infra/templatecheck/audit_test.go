package templatecheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"smtp-vault/shared/alert"
	"smtp-vault/shared/api"
)

// The audit trail's infrastructure: the Object Lock bucket, who may write
// and read it, and the alert rules as CloudWatch alarms.

func resource(t *testing.T, tpl *template, id, typ string) *yaml.Node {
	t.Helper()
	r := get(tpl.resources, id)
	if r == nil || literal(get(r, "Type")) != typ {
		t.Fatalf("template.yaml has no %s %s", typ, id)
	}
	return r
}

func TestAuditBucketIsLockedPrivateAndEncrypted(t *testing.T) {
	tpl := loadTemplate(t)
	b := resource(t, tpl, "AuditBucket", "AWS::S3::Bucket")
	p := get(b, "Properties")
	checks := []struct {
		what string
		ok   bool
	}{
		{"DeletionPolicy Retain", literal(get(b, "DeletionPolicy")) == "Retain"},
		{"UpdateReplacePolicy Retain", literal(get(b, "UpdateReplacePolicy")) == "Retain"},
		{"ObjectLockEnabled true", literal(get(p, "ObjectLockEnabled")) == "true"},
		{"ObjectLockConfiguration.ObjectLockEnabled Enabled", literal(get(p, "ObjectLockConfiguration", "ObjectLockEnabled")) == "Enabled"},
		{"default retention COMPLIANCE", literal(get(p, "ObjectLockConfiguration", "Rule", "DefaultRetention", "Mode")) == "COMPLIANCE"},
		{"default retention years = !Ref AuditRetentionYears", refTarget(get(p, "ObjectLockConfiguration", "Rule", "DefaultRetention", "Years")) == "AuditRetentionYears"},
		{"versioning Enabled", literal(get(p, "VersioningConfiguration", "Status")) == "Enabled"},
		{"server-side encryption", get(p, "BucketEncryption", "ServerSideEncryptionConfiguration") != nil},
		{"ACLs disabled (BucketOwnerEnforced)", strings.Contains(describe(get(p, "OwnershipControls")), "BucketOwnerEnforced")},
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		checks = append(checks, struct {
			what string
			ok   bool
		}{"PublicAccessBlockConfiguration." + k, literal(get(p, "PublicAccessBlockConfiguration", k)) == "true"})
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("AuditBucket: want %s", c.what)
		}
	}
	years := get(tpl.root, "Parameters", "AuditRetentionYears")
	if literal(get(years, "Type")) != "Number" || literal(get(years, "MinValue")) != "1" {
		t.Errorf("parameter AuditRetentionYears: want a Number of at least 1, got %s", describe(years))
	}
}

func TestAuditBucketPolicyRefusesPlainHTTPAndUnlockedRecords(t *testing.T) {
	tpl := loadTemplate(t)
	pol := resource(t, tpl, "AuditBucketPolicy", "AWS::S3::BucketPolicy")
	if refTarget(get(pol, "Properties", "Bucket")) != "AuditBucket" {
		t.Fatal("AuditBucketPolicy is not on AuditBucket")
	}
	var tls, lock bool
	for _, st := range get(pol, "Properties", "PolicyDocument", "Statement").Content {
		if literal(get(st, "Effect")) != "Deny" {
			continue
		}
		if literal(get(st, "Condition", "Bool", "aws:SecureTransport")) == "false" && literal(get(st, "Action")) == "s3:*" {
			res := describe(get(st, "Resource"))
			tls = strings.Contains(res, "AuditBucket.Arn") && strings.Contains(res, "/*")
		}
		if literal(get(st, "Condition", "StringNotEquals", "s3:object-lock-mode")) == "COMPLIANCE" && literal(get(st, "Action")) == "s3:PutObject" {
			lock = true
		}
	}
	if !tls {
		t.Error("AuditBucketPolicy: no Deny of s3:* on the bucket and its objects without aws:SecureTransport")
	}
	if !lock {
		t.Error("AuditBucketPolicy: no Deny of s3:PutObject without COMPLIANCE object lock")
	}
}

// actions lists a statement's Action, one or many.
func actions(st *yaml.Node) []string {
	if a := get(st, "Action"); a != nil && a.Kind == yaml.SequenceNode {
		return literals(a)
	}
	return []string{literal(get(st, "Action"))}
}

func policyActions(p *yaml.Node) []string {
	var out []string
	for _, st := range get(p, "Properties", "PolicyDocument", "Statement").Content {
		if literal(get(st, "Effect")) == "Allow" {
			out = append(out, actions(st)...)
		}
	}
	return out
}

func policyRoles(p *yaml.Node) []string {
	var out []string
	for _, r := range get(p, "Properties", "Roles").Content {
		out = append(out, refTarget(r))
	}
	return out
}

func TestEveryFunctionMayAppendAuditRecordsAndNoneMayDelete(t *testing.T) {
	tpl := loadTemplate(t)
	w := resource(t, tpl, "AuditWriterPolicy", "AWS::IAM::ManagedPolicy")
	roles := policyRoles(w)
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		if !slices.Contains(roles, fn.logicalID+"Role") {
			t.Errorf("%s: its role is not in AuditWriterPolicy; it could not record audit events", fn.logicalID)
		}
	}
	acts := policyActions(w)
	for _, want := range []string{"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:ListBucket", "sns:Publish"} {
		if !slices.Contains(acts, want) {
			t.Errorf("AuditWriterPolicy lacks %s", want)
		}
	}
	r := resource(t, tpl, "AuditReaderPolicy", "AWS::IAM::ManagedPolicy")
	if got := policyRoles(r); !slices.Equal(got, []string{tpl.functions["audit"].logicalID + "Role"}) {
		t.Errorf("AuditReaderPolicy roles %v, want the audit function's only", got)
	}
	for id, p := range tpl.resourcesOfType("AWS::IAM::ManagedPolicy") {
		for _, a := range policyActions(p) {
			if strings.HasPrefix(a, "s3:Delete") || a == "s3:*" || a == "s3:BypassGovernanceRetention" || a == "s3:PutBucketObjectLockConfiguration" {
				t.Errorf("%s allows %s", id, a)
			}
		}
	}
	globals := get(tpl.root, "Globals", "Function", "Environment", "Variables")
	if refTarget(get(globals, "AUDIT_BUCKET")) != "AuditBucket" || refTarget(get(globals, "AUDIT_RETENTION_YEARS")) != "AuditRetentionYears" {
		t.Error("Globals: AUDIT_BUCKET and AUDIT_RETENTION_YEARS must come from AuditBucket and AuditRetentionYears")
	}
}

// TestAlertRulesAreAlarms: each rule of shared/alert has an alarm that
// notifies the topic, with the rule's threshold and window, over metric
// filters or Contributor Insights rules that watch audit lines.
func TestAlertRulesAreAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	alarms := map[string]*yaml.Node{}
	for id, a := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		name := subString(get(a, "Properties", "AlarmName"))
		for _, rule := range []string{alert.RuleAccessBurst, alert.RuleNightAccess, alert.RuleResetWithoutIncident, alert.RuleAuthFailures} {
			if strings.HasSuffix(name, "-"+rule) {
				alarms[rule] = a
				if acts := get(a, "Properties", "AlarmActions"); acts == nil || len(acts.Content) != 1 || refTarget(acts.Content[0]) != "NotificationTopic" {
					t.Errorf("%s: AlarmActions must be [!Ref NotificationTopic]", id)
				}
			}
		}
	}
	want := map[string]struct {
		threshold string
		period    int
	}{
		alert.RuleAccessBurst:          {fmt.Sprint(alert.AccessLimit), int(alert.AccessWindow.Seconds())},
		alert.RuleAuthFailures:         {fmt.Sprint(alert.AuthFailureLimit), int(alert.AuthFailureWindow.Seconds())},
		alert.RuleNightAccess:          {"1", 0},
		alert.RuleResetWithoutIncident: {"1", 0},
	}
	for rule, w := range want {
		a, ok := alarms[rule]
		if !ok {
			t.Errorf("no alarm named ...-%s", rule)
			continue
		}
		if got := literal(get(a, "Properties", "Threshold")); got != w.threshold {
			t.Errorf("alarm %s: Threshold %s, want %s", rule, got, w.threshold)
		}
		if w.period > 0 {
			m := get(a, "Properties", "Metrics")
			if m == nil || len(m.Content) == 0 || literal(get(m.Content[0], "Period")) != fmt.Sprint(w.period) || !strings.Contains(subString(get(m.Content[0], "Expression")), "INSIGHT_RULE_METRIC") {
				t.Errorf("alarm %s: want a per-user INSIGHT_RULE_METRIC over %d s", rule, w.period)
			}
		}
	}
	for id, f := range tpl.resourcesOfType("AWS::Logs::MetricFilter") {
		if !strings.Contains(literal(get(f, "Properties", "FilterPattern")), `$.log_type = "audit"`) {
			t.Errorf("%s: the pattern must select audit lines ($.log_type = \"audit\")", id)
		}
	}
	if alert.NightStartHour != 22 || alert.NightEndHour != 6 {
		t.Fatal("the night rule changed: update NightAccessFilter's pattern")
	}
	if p := literal(get(tpl.resources, "NightAccessFilter", "Properties", "FilterPattern")); !strings.Contains(p, "%T2[23]:|T0[0-5]:%") {
		t.Errorf("NightAccessFilter does not match 22:00-05:59 UTC: %s", p)
	}
	if p := literal(get(tpl.resources, "ResetWithoutIncidentFilter", "Properties", "FilterPattern")); !strings.Contains(p, alert.CodeIncidentIDRequired) {
		t.Errorf("ResetWithoutIncidentFilter does not watch for %s", alert.CodeIncidentIDRequired)
	}
	// Failed authentications are counted in every function behind an
	// authenticated route.
	filtered := map[string]bool{}
	for _, f := range tpl.resourcesOfType("AWS::Logs::MetricFilter") {
		if strings.Contains(literal(get(f, "Properties", "FilterPattern")), "authentication_failed") {
			filtered[refTarget(get(f, "Properties", "LogGroupName"))] = true
		}
	}
	for _, r := range api.Routes {
		if r.Public {
			continue
		}
		fn := tpl.functions[r.Function]
		group := strings.TrimSuffix(fn.logicalID, "Function") + "LogGroup"
		if !filtered[group] {
			t.Errorf("%s: no metric filter counts authentication_failed in %s", fn.logicalID, group)
		}
		if rule := literal(get(tpl.resources, "AuthFailuresByUserRule", "Properties", "RuleBody")); rule == "" && !strings.Contains(subString(get(tpl.resources, "AuthFailuresByUserRule", "Properties", "RuleBody")), "${"+fn.logicalID+"}") {
			t.Errorf("AuthFailuresByUserRule does not read %s's log group", fn.logicalID)
		}
	}
}

// TestAlertStateBucketIsPrivateAndReachable: the alert rules' counters
// live in a private, encrypted, TLS-only bucket that expires idle records,
// and every function (all are in AuditWriterPolicy) may read and write
// them under alerts/.
func TestAlertStateBucketIsPrivateAndReachable(t *testing.T) {
	tpl := loadTemplate(t)
	b := resource(t, tpl, "AlertStateBucket", "AWS::S3::Bucket")
	p := get(b, "Properties")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if literal(get(p, "PublicAccessBlockConfiguration", k)) != "true" {
			t.Errorf("AlertStateBucket: want PublicAccessBlockConfiguration.%s", k)
		}
	}
	if get(p, "BucketEncryption", "ServerSideEncryptionConfiguration") == nil || !strings.Contains(describe(get(p, "OwnershipControls")), "BucketOwnerEnforced") {
		t.Error("AlertStateBucket: want server-side encryption and ACLs disabled")
	}
	if !strings.Contains(describe(get(p, "LifecycleConfiguration")), "ExpirationInDays") {
		t.Error("AlertStateBucket: want a lifecycle rule that expires idle counters")
	}
	pol := resource(t, tpl, "AlertStateBucketPolicy", "AWS::S3::BucketPolicy")
	if refTarget(get(pol, "Properties", "Bucket")) != "AlertStateBucket" || !strings.Contains(describe(get(pol, "Properties", "PolicyDocument")), "aws:SecureTransport") {
		t.Error("AlertStateBucketPolicy: want a TLS-only Deny on AlertStateBucket")
	}
	globals := get(tpl.root, "Globals", "Function", "Environment", "Variables")
	if refTarget(get(globals, "ALERT_STATE_BUCKET")) != "AlertStateBucket" {
		t.Error("Globals: ALERT_STATE_BUCKET must come from AlertStateBucket")
	}
	var rw, list bool
	for _, st := range get(resource(t, tpl, "AuditWriterPolicy", "AWS::IAM::ManagedPolicy"), "Properties", "PolicyDocument", "Statement").Content {
		res := describe(get(st, "Resource"))
		acts := actions(st)
		if strings.Contains(res, "AlertStateBucket.Arn}/alerts/*") && slices.Contains(acts, "s3:GetObject") && slices.Contains(acts, "s3:PutObject") {
			rw = true
		}
		if strings.Contains(res, "AlertStateBucket.Arn") && slices.Contains(acts, "s3:ListBucket") {
			list = true
		}
	}
	if !rw || !list {
		t.Errorf("AuditWriterPolicy: want GetObject and PutObject on AlertStateBucket/alerts/* (%v) and ListBucket on it (%v)", rw, list)
	}
}

// TestOnlyRecordersMayAppendAuditRecords: the audit bucket's policy
// denies s3:PutObject to every principal but the functions' roles (and
// the operators' role, when given): a writer outside them cannot plant
// objects in the trail.
func TestOnlyRecordersMayAppendAuditRecords(t *testing.T) {
	tpl := loadTemplate(t)
	pol := resource(t, tpl, "AuditBucketPolicy", "AWS::S3::BucketPolicy")
	var allowed []string
	found := false
	for _, st := range get(pol, "Properties", "PolicyDocument", "Statement").Content {
		arns := get(st, "Condition", "ArnNotEquals", "aws:PrincipalArn")
		if literal(get(st, "Effect")) != "Deny" || literal(get(st, "Action")) != "s3:PutObject" || arns == nil {
			continue
		}
		found = true
		for _, a := range arns.Content {
			if r, attr := getAtt(a); attr == "Arn" {
				allowed = append(allowed, r)
			}
		}
	}
	if !found {
		t.Fatal("AuditBucketPolicy: no Deny of s3:PutObject to principals other than the recorders")
	}
	for _, name := range sortedKeys(tpl.functions) {
		if role := tpl.functions[name].logicalID + "Role"; !slices.Contains(allowed, role) {
			t.Errorf("%s may not append audit records: it records events", role)
		}
	}
	if len(allowed) != len(tpl.functions) {
		t.Errorf("the bucket lets %d roles append, want the %d functions' only: %v", len(allowed), len(tpl.functions), allowed)
	}
}
