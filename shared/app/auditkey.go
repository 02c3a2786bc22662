package app

import (
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// AuditChainConfig names what signs and anchors the audit chains in Vault.
type AuditChainConfig struct {
	// MACKey (VAULT_AUDIT_MAC_KEY, default audit-mac) is the derived
	// Transit key whose data keys MAC the audit records.
	MACKey string
	// AnchorsMount (VAULT_AUDIT_ANCHORS_MOUNT, default smtp-audit-anchors)
	// is the KV v2 mount holding each chain's anchored head.
	AnchorsMount string
}

func auditChainFromEnv() AuditChainConfig {
	return AuditChainConfig{MACKey: env("VAULT_AUDIT_MAC_KEY", "audit-mac"), AnchorsMount: env("VAULT_AUDIT_ANCHORS_MOUNT", "smtp-audit-anchors")}
}

// newTrail is the audit bucket: records MACed with a data key Transit
// hands this instance on its first record, anchors in Vault KV, skipped
// objects logged, and each record's hash on the audit stream (CloudWatch).
func newTrail(cfg Config, client *s3.Client, v *vault.Client, log *slog.Logger, lines io.Writer) *audit.Bucket {
	c := cfg.AuditChain
	if c.MACKey == "" || c.AnchorsMount == "" {
		c = auditChainFromEnv()
	}
	return audit.NewBucket(audit.BucketConfig{
		Client:         client,
		Name:           cfg.AuditBucket,
		RetentionYears: cfg.AuditRetentionYears,
		Keys:           audit.NewKeys(v, c.MACKey),
		Anchors:        &audit.VaultAnchors{Vault: v, Mount: c.AnchorsMount},
		Log:            log,
		Lines:          lines,
	})
}
