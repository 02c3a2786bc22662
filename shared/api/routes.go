package api

// Route is one HTTP API route and the function that serves it. template.yaml
// declares the same routes; a test keeps the two in step.
type Route struct {
	Method   string
	Path     string
	Function string
}

const tenantCredentials = "/api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials"

// Routes lists every route of the HTTP API.
var Routes = []Route{
	{"POST", tenantCredentials, "store"},
	{"GET", tenantCredentials, "retrieve"},
	{"POST", tenantCredentials + "/rotate", "rotate"},
	{"POST", tenantCredentials + "/emergency-reset", "emergency-reset"},
	{"GET", tenantCredentials + "/audit", "audit"},
	{"POST", "/api/v1/platform-admin/smtp-credentials/rotate-overdue", "rotate"},
	{"GET", "/api/v1/platform-admin/smtp-credentials", "console"},
	{"GET", "/platform-admin/{proxy+}", "console"},
}
