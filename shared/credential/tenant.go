package credential

import (
	"fmt"
	"regexp"
)

var tenantIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// ValidateTenantID accepts only a lowercase UUID version 4, so that no other
// string ever becomes part of a Vault path.
func ValidateTenantID(id string) error {
	if !tenantIDPattern.MatchString(id) {
		return fmt.Errorf("%w: tenant_id must be a lowercase UUID version 4", ErrInvalidInput)
	}
	return nil
}

// A tenant's KV paths, under the smtp mount.

// AdminPath is the KV path of a tenant's admin credential (record.go).
func AdminPath(tenantID string) string { return tenantID + "/admin" }

// MailUPath is the KV path of a tenant's MailU admin API connection
// (mailuconn.go).
func MailUPath(tenantID string) string { return tenantID + "/mailu" }

// LockPath is the KV path of a tenant's change lock (lock.go).
func LockPath(tenantID string) string { return tenantID + "/lock" }
