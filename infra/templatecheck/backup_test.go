package templatecheck

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

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
		"BackupFailedAlarm":   {"BackupFailed", "1", "notBreaching"},
		"NoRecentBackupAlarm": {"BackupSucceeded", "26", "breaching"},
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
}

// kmsCall is a KMS request as IAM evaluates it: the action and the
// condition keys it carries, template values rendered by tplValue.
type kmsCall struct {
	action string
	keys   map[string]string
}

// s3KMSCall is what S3 sends KMS for an object of the backups bucket under
// its default encryption (SSE-KMS with a bucket key): S3's service name and
// the bucket's ARN as encryption context, never our own purpose.
func s3KMSCall(action string) kmsCall {
	return kmsCall{action, map[string]string{
		"kms:ViaService":                   "s3.${AWS::Region}.amazonaws.com",
		"kms:EncryptionContext:aws:s3:arn": "${BackupsBucket.Arn}",
	}}
}

// dataKeyCall is the backup function's own call for a backup's data key.
func dataKeyCall(action string) kmsCall {
	return kmsCall{action, map[string]string{"kms:EncryptionContext:purpose": backup.KeyContext}}
}

// tplValue renders a literal, !Ref X, !GetAtt A.B or !Sub "s" as one
// comparable string ("${X}", "${A.B}", "s").
func tplValue(n *yaml.Node) string {
	if isLiteral(n) {
		return n.Value
	}
	if r := refTarget(n); r != "" {
		return "${" + r + "}"
	}
	if res, attr := getAtt(n); res != "" {
		return "${" + res + "." + attr + "}"
	}
	return subString(n)
}

func tplValues(n *yaml.Node) []string {
	if n != nil && n.Kind == yaml.SequenceNode {
		var out []string
		for _, c := range n.Content {
			out = append(out, tplValue(c))
		}
		return out
	}
	return []string{tplValue(n)}
}

// conditionHolds evaluates a statement's Condition against a call: every
// operator and key must be satisfied, and a key the call does not carry
// fails (as in IAM, for StringEquals and StringLike without IfExists).
func conditionHolds(cond *yaml.Node, c kmsCall) bool {
	for op, keys := range entries(cond) {
		for key, want := range entries(keys) {
			got, ok := c.keys[key]
			if !ok {
				return false
			}
			match := false
			for _, w := range tplValues(want) {
				switch op {
				case "StringEquals":
					match = match || got == w
				case "StringLike":
					re := "^" + strings.ReplaceAll(regexp.QuoteMeta(w), `\*`, ".*") + "$"
					match = match || regexp.MustCompile(re).MatchString(got)
				default:
					return false // an operator this check does not model: assume it refuses
				}
			}
			if !match {
				return false
			}
		}
	}
	return true
}

// statements are the IAM statements a function's role holds: its inline
// Policies and the managed policies naming its role.
func (tpl *template) statements(fn function) []*yaml.Node {
	var out []*yaml.Node
	if pols := get(fn.node, "Properties", "Policies"); pols != nil {
		for _, p := range pols.Content {
			if sts := get(p, "Statement"); sts != nil {
				out = append(out, sts.Content...)
			}
		}
	}
	for _, p := range tpl.resourcesOfType("AWS::IAM::ManagedPolicy") {
		if slices.Contains(policyRoles(p), fn.logicalID+"Role") {
			out = append(out, get(p, "Properties", "PolicyDocument", "Statement").Content...)
		}
	}
	return out
}

// allows says whether fn's role may make call on the KMS key keyID. The
// key policy delegates to IAM (checked by the caller), so the role's
// statements decide.
func (tpl *template) allows(fn function, keyID string, c kmsCall) bool {
	for _, st := range tpl.statements(fn) {
		if literal(get(st, "Effect")) != "Allow" {
			continue
		}
		if res, _ := getAtt(get(st, "Resource")); res != keyID || !slices.Contains(actions(st), c.action) {
			continue
		}
		if conditionHolds(get(st, "Condition"), c) {
			return true
		}
	}
	return false
}

// mayOnBucket says whether fn's role holds an S3 action on the objects of
// BackupsBucket.
func (tpl *template) mayOnBucket(fn function, action string) bool {
	for _, st := range tpl.statements(fn) {
		if literal(get(st, "Effect")) == "Allow" && slices.Contains(actions(st), action) &&
			strings.HasPrefix(subString(get(st, "Resource")), "${BackupsBucket.Arn}/") {
			return true
		}
	}
	return false
}

// TestBackupsKeyServesS3AndOnlyTheBackupFunctionUnwraps: the backups
// bucket encrypts by default with BackupsKey, so S3 calls KMS on every
// upload (GenerateDataKey, and Decrypt for a multipart upload) and
// download (Decrypt) with its own encryption context. Each role that
// writes or reads backup objects must be allowed those calls as S3 makes
// them; only the backup function may unwrap a backup's data key (the
// purpose context) itself, and the console, whose health route reads the
// manifests, gets the backup settings (BACKUP_BUCKET, BACKUP_KMS_KEY_ID)
// without which it reports backups as not configured.
func TestBackupsKeyServesS3AndOnlyTheBackupFunctionUnwraps(t *testing.T) {
	tpl := loadTemplate(t)
	b := resource(t, tpl, "BackupsBucket", "AWS::S3::Bucket")
	rules := get(b, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration")
	if rules == nil || len(rules.Content) != 1 {
		t.Fatal("BackupsBucket: want one default encryption rule")
	}
	sse := get(rules.Content[0], "ServerSideEncryptionByDefault")
	keyID, _ := getAtt(get(sse, "KMSMasterKeyID"))
	if literal(get(sse, "SSEAlgorithm")) != "aws:kms" || keyID != "BackupsKey" {
		t.Fatalf("BackupsBucket: default encryption %s, want aws:kms with !GetAtt BackupsKey.Arn", describe(sse))
	}
	if literal(get(rules.Content[0], "BucketKeyEnabled")) != "true" {
		t.Error("BackupsBucket: BucketKeyEnabled must be true (the grants name the bucket's ARN as S3's encryption context)")
	}
	key := resource(t, tpl, keyID, "AWS::KMS::Key")
	delegates := false
	for _, st := range get(key, "Properties", "KeyPolicy", "Statement").Content {
		if literal(get(st, "Effect")) == "Allow" && strings.HasSuffix(subString(get(st, "Principal", "AWS")), ":root") &&
			slices.Contains(actions(st), "kms:*") {
			delegates = true
		}
	}
	if !delegates {
		t.Fatalf("%s: the key policy must delegate to the account's IAM policies, which this check reads", keyID)
	}

	readers := 0
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		put, read := tpl.mayOnBucket(fn, "s3:PutObject"), tpl.mayOnBucket(fn, "s3:GetObject")
		if put {
			for _, a := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
				if !tpl.allows(fn, keyID, s3KMSCall(a)) {
					t.Errorf("%s writes backup objects but S3's %s on %s for it would be refused", fn.logicalID, a, keyID)
				}
			}
		}
		if read {
			readers++
			if !tpl.allows(fn, keyID, s3KMSCall("kms:Decrypt")) {
				t.Errorf("%s reads backup objects but S3's kms:Decrypt on %s for it would be refused", fn.logicalID, keyID)
			}
		}
		own := tpl.allows(fn, keyID, dataKeyCall("kms:Decrypt"))
		if name == "backup" {
			if !own || !tpl.allows(fn, keyID, dataKeyCall("kms:GenerateDataKey")) {
				t.Errorf("%s: must generate and unwrap backup data keys (purpose %q)", fn.logicalID, backup.KeyContext)
			}
		} else if own {
			t.Errorf("%s may unwrap a backup's data key itself; only the backup function may", fn.logicalID)
		}
		for _, c := range []kmsCall{{"kms:Decrypt", nil}, {"kms:GenerateDataKey", nil}} {
			if name != "backup" && tpl.allows(fn, keyID, c) {
				t.Errorf("%s may call %s on %s directly, with no condition", fn.logicalID, c.action, keyID)
			}
		}
	}
	if readers < 2 {
		t.Errorf("%d functions read backup objects; want the backup function and the console", readers)
	}

	console := tpl.functions["console"]
	vars := get(console.node, "Properties", "Environment", "Variables")
	if refTarget(get(vars, "BACKUP_BUCKET")) != "BackupsBucket" {
		t.Error("ConsoleFunction: BACKUP_BUCKET must be !Ref BackupsBucket")
	}
	if res, _ := getAtt(get(vars, "BACKUP_KMS_KEY_ID")); res != keyID {
		t.Errorf("ConsoleFunction: BACKUP_KMS_KEY_ID must be !GetAtt %s.Arn, or its health route says backups are not configured (BackupConfigFromEnv in Lambda)", keyID)
	}
}
