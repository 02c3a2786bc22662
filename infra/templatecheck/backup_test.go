package templatecheck

import (
	"strconv"
	"testing"

	"smtp-vault/shared/backup"
)

// TestBackupsBucketAndAlarms: the backups live in a private, versioned,
// encrypted bucket whose lifecycle never removes what retention keeps;
// the backup function has its bucket and KMS key; a failed run and a day
// without a backup raise alarms on the notification topic.
func TestBackupsBucketAndAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	b := resource(t, tpl, "BackupsBucket", "AWS::S3::Bucket")
	if literal(get(b, "Properties", "VersioningConfiguration", "Status")) != "Enabled" {
		t.Error("BackupsBucket: versioning must be enabled (a deleted backup stays a noncurrent version)")
	}
	if get(b, "Properties", "BucketEncryption") == nil || literal(get(b, "Properties", "PublicAccessBlockConfiguration", "RestrictPublicBuckets")) != "true" {
		t.Error("BackupsBucket: must be encrypted and private")
	}
	var expire, abort, noncurrent bool
	for _, r := range get(b, "Properties", "LifecycleConfiguration", "Rules").Content {
		if d := literal(get(r, "ExpirationInDays")); d != "" {
			n, _ := strconv.Atoi(d)
			// The oldest backup retention keeps is the newest of the month
			// 11 months before this one: up to 12 months old.
			if n < 31*backup.KeepMonths {
				t.Errorf("BackupsBucket: objects expire after %d days, before the %d monthly backups retention keeps", n, backup.KeepMonths)
			}
			expire = true
		}
		abort = abort || get(r, "AbortIncompleteMultipartUpload") != nil
		noncurrent = noncurrent || get(r, "NoncurrentVersionExpiration") != nil
	}
	if !expire || !abort || !noncurrent {
		t.Errorf("BackupsBucket lifecycle: expiration %v, crashed uploads aborted %v, noncurrent versions expire %v; want all", expire, abort, noncurrent)
	}
	fn := tpl.functions["backup"]
	vars := get(fn.node, "Properties", "Environment", "Variables")
	if refTarget(get(vars, "BACKUP_BUCKET")) != "BackupsBucket" {
		t.Error("BackupFunction: BACKUP_BUCKET must be !Ref BackupsBucket")
	}
	if res, _ := getAtt(get(vars, "BACKUP_KMS_KEY_ID")); res != "BackupsKey" {
		t.Error("BackupFunction: BACKUP_KMS_KEY_ID must be the BackupsKey")
	}
	for id, want := range map[string]struct{ metric, periods, missing string }{
		"BackupFailedAlarm": {"BackupFailed", "1", "notBreaching"},
		// Not breaching: a new stack has no backup yet, and its first page
		// must not be a false alarm. The alarm notifies when it finds no
		// success in 26 hours (INSUFFICIENT_DATA, below).
		"NoRecentBackupAlarm": {"BackupSucceeded", "26", "missing"},
	} {
		a := resource(t, tpl, id, "AWS::CloudWatch::Alarm")
		p := get(a, "Properties")
		if literal(get(p, "MetricName")) != want.metric || literal(get(p, "Namespace")) != "smtp-vault/backup" ||
			literal(get(p, "Period")) != "3600" || literal(get(p, "EvaluationPeriods")) != want.periods || literal(get(p, "TreatMissingData")) != want.missing {
			t.Errorf("%s: want %s in smtp-vault/backup, hourly over %s periods, missing data %s", id, want.metric, want.periods, want.missing)
		}
		if acts := get(p, "AlarmActions"); acts == nil || len(acts.Content) != 1 || refTarget(acts.Content[0]) != "NotificationTopic" {
			t.Errorf("%s: AlarmActions must be [!Ref NotificationTopic]", id)
		}
	}
	// With missing data left missing, 26 hours without a success is
	// INSUFFICIENT_DATA: that state must notify, or a dead schedule is
	// silent.
	p := get(resource(t, tpl, "NoRecentBackupAlarm", "AWS::CloudWatch::Alarm"), "Properties")
	if acts := get(p, "InsufficientDataActions"); acts == nil || len(acts.Content) != 1 || refTarget(acts.Content[0]) != "NotificationTopic" {
		t.Error("NoRecentBackupAlarm: InsufficientDataActions must be [!Ref NotificationTopic]")
	}
}
