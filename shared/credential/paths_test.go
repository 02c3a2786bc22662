package credential

import (
	"testing"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

// TestPathConstructors walks every function of the package that builds a
// Vault path from a caller's value: each refuses what pathseg refuses, in
// every argument.
func TestPathConstructors(t *testing.T) {
	tenant, incident, response := pathsegtest.Good(pathseg.TenantID), pathsegtest.Good(pathseg.IncidentID), pathsegtest.Good(pathseg.ResponseID)
	for _, c := range []struct {
		name  string
		kind  pathseg.Kind
		build func(string) string
	}{
		{"AdminPath", pathseg.TenantID, AdminPath},
		{"MailUPath", pathseg.TenantID, MailUPath},
		{"LockPath", pathseg.TenantID, LockPath},
		{"incidentPath", pathseg.IncidentID, incidentPath},
		{"resultsPath(incident)", pathseg.IncidentID, func(v string) string { return resultsPath(v, response) }},
		{"resultsPath(response)", pathseg.ResponseID, func(v string) string { return resultsPath(incident, v) }},
		{"resultPath(incident)", pathseg.IncidentID, func(v string) string { return resultPath(v, response, tenant) }},
		{"resultPath(response)", pathseg.ResponseID, func(v string) string { return resultPath(incident, v, tenant) }},
		{"resultPath(tenant)", pathseg.TenantID, func(v string) string { return resultPath(incident, response, v) }},
	} {
		pathsegtest.Refuses(t, c.name, c.kind, c.build)
	}
}
