package credential

import (
	"fmt"

	"smtp-vault/shared/pathseg"
)

// ValidateTenantID accepts only a lowercase UUID version 4 (pathseg), so
// that no other string ever becomes part of a Vault path; the refusal is
// ErrInvalidInput.
func ValidateTenantID(id string) error {
	if err := pathseg.Check(pathseg.TenantID, id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return nil
}

// A tenant's KV paths, under the smtp mount. Each panics on a tenant id
// that skipped ValidateTenantID (pathseg.Must).

// AdminPath is the KV path of a tenant's admin credential (record.go).
func AdminPath(tenantID string) string { return pathseg.Must(pathseg.TenantID, tenantID) + "/admin" }

// MailUPath is the KV path of a tenant's MailU admin API connection
// (mailuconn.go).
func MailUPath(tenantID string) string { return pathseg.Must(pathseg.TenantID, tenantID) + "/mailu" }

// LockPath is the KV path of a tenant's change lock (lock.go).
func LockPath(tenantID string) string { return pathseg.Must(pathseg.TenantID, tenantID) + "/lock" }
