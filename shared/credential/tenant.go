package credential

import "smtp-vault/shared/rotation"

// RotationPolicy is the only policy the platform has: rotate every 180 days.
const (
	RotationPolicy   = rotation.RotationPolicy
	RotationInterval = rotation.RotationInterval
)

// ValidateTenantID accepts only a lowercase UUID version 4, so that no other
// string ever becomes part of a Vault path.
func ValidateTenantID(id string) error { return rotation.ValidateTenantID(id) }

// AdminPath is the KV path of a tenant's admin credential.
func AdminPath(tenantID string) string { return rotation.AdminPath(tenantID) }

// MailUPath is the KV path of a tenant's MailU admin API connection.
func MailUPath(tenantID string) string { return rotation.MailUPath(tenantID) }

// LockPath is the KV path of a tenant's change lock.
func LockPath(tenantID string) string { return rotation.LockPath(tenantID) }
