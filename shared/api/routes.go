package api

import "smtp-vault/shared/auth"

// Route is one HTTP API route, the function that serves it, and who may
// call it. template.yaml declares the same routes and docs/api.md the same
// access table; tests keep the three in step. Route is comparable.
type Route struct {
	Method   string
	Path     string
	Function string
	// Roles may call the route; a caller holding none of them gets 403.
	// A route with no roles is refused to everyone unless it is Public.
	Roles auth.RoleSet
	// Reauth routes also need the caller's valid X-Reauth-Token (401
	// reauth_required otherwise), checked after the role.
	Reauth bool
	// Public routes have no JWT authorizer: the console's pages, which a
	// browser loads without a bearer header and which hold no data.
	Public bool
}

// Key is the route key API Gateway puts in events ("GET /path").
func (r Route) Key() string { return r.Method + " " + r.Path }

const (
	tenantCredentials  = "/api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials"
	compromiseResponse = "/api/v1/platform-admin/incidents/{incident_id}/compromise-response"
	healthPath         = "/api/v1/platform-admin/vault/health"
)

var (
	staff  = auth.NewRoleSet(auth.RoleSupport, auth.RolePlatformAdmin)
	admins = auth.NewRoleSet(auth.RolePlatformAdmin)
)

// Routes lists every route of the HTTP API: the one authorisation table.
var Routes = []Route{
	{Method: "POST", Path: tenantCredentials, Function: "store", Roles: admins, Reauth: true},
	{Method: "GET", Path: tenantCredentials, Function: "retrieve", Roles: staff, Reauth: true},
	{Method: "POST", Path: tenantCredentials + "/rotate", Function: "rotate", Roles: admins, Reauth: true},
	{Method: "POST", Path: tenantCredentials + "/emergency-reset", Function: "emergency-reset", Roles: admins, Reauth: true},
	{Method: "GET", Path: tenantCredentials + "/audit", Function: "audit", Roles: staff},
	{Method: "POST", Path: tenantCredentials + "/events", Function: "console", Roles: staff, Reauth: true},
	{Method: "POST", Path: "/api/v1/platform-admin/smtp-credentials/rotate-overdue", Function: "rotate", Roles: admins, Reauth: true},
	{Method: "GET", Path: "/api/v1/platform-admin/smtp-credentials", Function: "console", Roles: admins},
	{Method: "GET", Path: healthPath, Function: "console", Roles: admins},
	{Method: "GET", Path: "/platform-admin/{proxy+}", Function: "console", Public: true},
	{Method: "POST", Path: "/api/v1/platform-admin/reauth", Function: "reauth", Roles: staff},
	{Method: "POST", Path: compromiseResponse, Function: "emergency-reset", Roles: admins, Reauth: true},
	{Method: "GET", Path: compromiseResponse, Function: "emergency-reset", Roles: admins},
}

// routeFor finds the route of an event by its route key.
func routeFor(key string) (Route, bool) {
	for _, r := range Routes {
		if r.Key() == key {
			return r, true
		}
	}
	return Route{}, false
}
