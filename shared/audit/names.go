package audit

// Events of the audit trail itself.
const (
	// AuditTrailQueried: someone read a tenant's audit trail (the query
	// route). Reading the trail shows who touched a credential, from
	// where: it is audited like any other access, and fails closed.
	AuditTrailQueried = "audit_trail_queried"
	// AuditChainVerified: the verify invocation walked a chain; critical
	// when it found a break.
	AuditChainVerified = "audit_chain_verified"
)
