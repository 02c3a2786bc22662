// Package templatecheck holds only tests: they keep template.yaml, the
// function folders, the API routes and the sample events in step.
package templatecheck
