package rotation

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

// AdminPath is the KV path of a tenant's admin credential.
func AdminPath(tenantID string) string { return tenantID + "/admin" }
