package templatecheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestComplianceDocNamesRealTests keeps docs/compliance.md and
// docs/audit.md honest: every test they cite as evidence exists, and so
// does every template.yaml resource named in backquotes that looks like one.
func TestComplianceDocNamesRealTests(t *testing.T) {
	root := repoRoot(t)
	tests := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".cache" || d.Name() == ".local" || d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
				tests[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tpl := loadTemplate(t)
	resources := entries(tpl.resources)
	cited := regexp.MustCompile("`(Test\\w+)`")
	res := regexp.MustCompile("`([A-Z][A-Za-z]+(?:Bucket|Policy|Alarm|Topic|Filter|Rule))`")
	for _, doc := range []string{"docs/compliance.md", "docs/audit.md"} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cited.FindAllStringSubmatch(string(b), -1) {
			if !tests[m[1]] {
				t.Errorf("%s cites %s, which no test file declares", doc, m[1])
			}
		}
		for _, m := range res.FindAllStringSubmatch(string(b), -1) {
			if _, ok := resources[m[1]]; !ok && !strings.HasPrefix(m[1], "Test") {
				t.Errorf("%s names template resource %s, which template.yaml does not declare", doc, m[1])
			}
		}
	}
}
