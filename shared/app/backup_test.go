package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"smtp-vault/shared/app"
)

func TestBackupConfigFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want app.BackupConfig
		err  string
	}{
		{"no bucket", map[string]string{}, app.BackupConfig{}, "BACKUP_BUCKET"},
		{"local defaults", map[string]string{"BACKUP_BUCKET": "b"}, app.BackupConfig{Bucket: "b", KeyFile: ".local/backup.key", UnsealWait: 2 * time.Minute}, ""},
		{"kms", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_KMS_KEY_ID": "arn:aws:kms:eu-central-1:123456789012:key/x", "BACKUP_TEMP_DIR": "/tmp", "BACKUP_UNSEAL_WAIT": "30s"},
			app.BackupConfig{Bucket: "b", KMSKeyID: "arn:aws:kms:eu-central-1:123456789012:key/x", KeyFile: ".local/backup.key", TempDir: "/tmp", UnsealWait: 30 * time.Second}, ""},
		{"lambda without kms", map[string]string{"BACKUP_BUCKET": "b", "AWS_LAMBDA_FUNCTION_NAME": "backup"}, app.BackupConfig{}, "BACKUP_KMS_KEY_ID"},
		{"bad wait", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_UNSEAL_WAIT": "soon"}, app.BackupConfig{}, "BACKUP_UNSEAL_WAIT"},
		{"restore targets", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_RESTORE_TARGETS": " https://vault-2.internal:8200 ,http://127.0.0.1:8300,,http://[::1]:8300"},
			app.BackupConfig{Bucket: "b", KeyFile: ".local/backup.key", UnsealWait: 2 * time.Minute, RestoreTargets: []string{"https://vault-2.internal:8200", "http://127.0.0.1:8300", "http://[::1]:8300"}}, ""},
		{"plain http off loopback", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_RESTORE_TARGETS": "https://ok.internal,http://vault.internal:8200"}, app.BackupConfig{}, "BACKUP_RESTORE_TARGETS"},
		{"a target with a path", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_RESTORE_TARGETS": "https://vault.internal/v1/sys"}, app.BackupConfig{}, "BACKUP_RESTORE_TARGETS"},
		{"a target with credentials", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_RESTORE_TARGETS": "https://u:p@vault.internal"}, app.BackupConfig{}, "BACKUP_RESTORE_TARGETS"},
		{"not a URL", map[string]string{"BACKUP_BUCKET": "b", "BACKUP_RESTORE_TARGETS": "vault.internal:8200"}, app.BackupConfig{}, "BACKUP_RESTORE_TARGETS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"BACKUP_BUCKET", "BACKUP_KMS_KEY_ID", "BACKUP_KEY_FILE", "BACKUP_TEMP_DIR", "BACKUP_UNSEAL_WAIT", "BACKUP_RESTORE_TARGETS", "AWS_LAMBDA_FUNCTION_NAME"} {
				t.Setenv(k, c.env[k])
			}
			got, err := app.BackupConfigFromEnv()
			if err != nil && strings.Contains(err.Error(), "u:p@") {
				t.Errorf("the error repeats a target's password: %v", err)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error naming %s", err, c.err)
				}
				return
			}
			if err != nil || got.Bucket != c.want.Bucket || got.KMSKeyID != c.want.KMSKeyID || got.KeyFile != c.want.KeyFile || got.TempDir != c.want.TempDir || got.UnsealWait != c.want.UnsealWait || !slices.Equal(got.RestoreTargets, c.want.RestoreTargets) {
				t.Fatalf("got %+v %v, want %+v", got, err, c.want)
			}
		})
	}
}
