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
	incident, response := pathsegtest.Good(pathseg.IncidentID), pathsegtest.Good(pathseg.ResponseID)
	for _, c := range []struct {
		name  string
		kind  pathseg.Kind
		build func(string) string
	}{
		{"AdminPath", pathseg.TenantID, AdminPath},
		{"MailUPath", pathseg.TenantID, MailUPath},
		{"LockPath", pathseg.TenantID, LockPath},
		{"latestPath", pathseg.IncidentID, latestPath},
		{"runFolder(incident)", pathseg.IncidentID, func(v string) string { return runFolder(v, response) }},
		{"runFolder(response)", pathseg.ResponseID, func(v string) string { return runFolder(incident, v) }},
		{"runPath(incident)", pathseg.IncidentID, func(v string) string { return runPath(v, response) }},
		{"runPath(response)", pathseg.ResponseID, func(v string) string { return runPath(incident, v) }},
		{"chunkPath(incident)", pathseg.IncidentID, func(v string) string { return chunkPath(v, response, 3) }},
		{"chunkPath(response)", pathseg.ResponseID, func(v string) string { return chunkPath(incident, v, 3) }},
		{"resultPath(incident)", pathseg.IncidentID, func(v string) string { return resultPath(v, response, 3) }},
		{"resultPath(response)", pathseg.ResponseID, func(v string) string { return resultPath(incident, v, 3) }},
		{"doneFolder(incident)", pathseg.IncidentID, func(v string) string { return doneFolder(v, response) }},
		{"doneFolder(response)", pathseg.ResponseID, func(v string) string { return doneFolder(incident, v) }},
		{"donePath(incident)", pathseg.IncidentID, func(v string) string { return donePath(v, response, 3) }},
		{"donePath(response)", pathseg.ResponseID, func(v string) string { return donePath(incident, v, 3) }},
	} {
		pathsegtest.Refuses(t, c.name, c.kind, c.build)
	}
}
