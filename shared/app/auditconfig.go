package app

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// auditFromEnv reads the audit trail's settings (see Config).
func (c *Config) auditFromEnv() error {
	c.AuditBucket = os.Getenv("AUDIT_BUCKET")
	c.S3Endpoint = os.Getenv("S3_ENDPOINT")
	c.S3Region = env("S3_REGION", c.AWSRegion)
	c.S3AccessKey = os.Getenv("S3_ACCESS_KEY")
	c.S3SecretKey = os.Getenv("S3_SECRET_KEY")
	c.AlertsMount = env("VAULT_ALERTS_MOUNT", "smtp-alerts")
	c.AlertStateBucket = os.Getenv("ALERT_STATE_BUCKET")
	c.AuditChain = auditChainFromEnv()
	c.AuditRetentionYears = 7
	if v := os.Getenv("AUDIT_RETENTION_YEARS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("config: AUDIT_RETENTION_YEARS=%q is not a number of years from 1 to 100", v)
		}
		c.AuditRetentionYears = n
	}
	var err error
	if c.S3Timeout, err = duration("S3_TIMEOUT", 10*time.Second); err != nil {
		return err
	}
	if (c.S3AccessKey == "") != (c.S3SecretKey == "") {
		return fmt.Errorf("config: S3_ACCESS_KEY and S3_SECRET_KEY go together")
	}
	return nil
}
