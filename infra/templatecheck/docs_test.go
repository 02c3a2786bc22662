package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// awsDocs are the documents whose commands need AWS; their blocks are
// marked <!-- aws --> (the local ones <!-- doc-test ... --> run in
// scripts/devenv).
var awsDocs = []string{"docs/deploy.md", "docs/runbook.md"}

// docNamed are the documents whose prose and placeholders may name the
// template's parameters, outputs and resources.
var docNamed = []string{"README.md", "docs/deploy.md", "docs/runbook.md", "docs/access.md", "docs/audit.md", "docs/architecture.md", "docs/local.md"}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names are the template's parameters, outputs and resources.
type names struct{ parameters, outputs, resources map[string]bool }

func templateNames(t *testing.T) names {
	tpl := loadTemplate(t)
	keys := func(section string) map[string]bool {
		m := map[string]bool{}
		for k := range entries(get(tpl.root, section)) {
			m[k] = true
		}
		return m
	}
	return names{parameters: keys("Parameters"), outputs: keys("Outputs"), resources: keys("Resources")}
}

var deployTableRow = regexp.MustCompile("^\\| `([A-Za-z0-9]+)` \\|")

// TestDeployDocListsEveryParameter: the first deploy's table in
// docs/deploy.md is where an operator learns what each parameter takes;
// one it lacks is one nobody sets on purpose, and a row without a
// parameter is a prompt that never comes.
func TestDeployDocListsEveryParameter(t *testing.T) {
	n := templateNames(t)
	doc := readDoc(t, "docs/deploy.md")
	start := strings.Index(doc, "## 3. First deploy")
	end := strings.Index(doc, "## 4.")
	if start < 0 || end < start {
		t.Fatal("docs/deploy.md has no section 3 followed by section 4")
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(doc[start:end], "\n") {
		if m := deployTableRow.FindStringSubmatch(line); m != nil {
			listed[m[1]] = true
			if !n.parameters[m[1]] {
				t.Errorf("docs/deploy.md's table lists %s, which template.yaml does not declare", m[1])
			}
		}
	}
	for _, p := range sortedKeys(n.parameters) {
		if !listed[p] {
			t.Errorf("template.yaml declares the parameter %s, which docs/deploy.md's table of section 3 does not list", p)
		}
	}
}

var (
	// <BackupsKeyArn>, <StoreFunctionName output>,
	// <RotateSweepFunction's physical name>: a value from the stack.
	placeholder = regexp.MustCompile(`<([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)(?:'s physical name| output)?>`)
	// "the stack's `VaultAddress`", "parameter `X`", "output `X`",
	// "(output `X`)", "stack output `X`".
	prose       = regexp.MustCompile("(parameter|output|stack's) `([A-Z][A-Za-z0-9]+)`")
	outputKey   = regexp.MustCompile(`OutputKey=='([A-Za-z0-9]+)'`)
	logicalID   = regexp.MustCompile(`--logical-resource-id ([A-Za-z0-9]+)`)
	override    = regexp.MustCompile(`\b([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)=(?:[^=]|$)`)
	eventFile   = regexp.MustCompile(`(?:fileb?://)?\b(events/[A-Za-z0-9._-]+\.json)`)
	scriptCall  = regexp.MustCompile(`go run \./scripts/([a-z0-9-]+)((?: +[^\s#|&;]+)*)`)
	flagUse     = regexp.MustCompile(`^-{1,2}([a-z][a-z0-9-]*)`)
	awsMarker   = regexp.MustCompile(`^<!--\s*aws\s*-->$`)
	fenceOpen   = "```sh"
	fenceAnyEnd = "```"
)

// awsBlocks are the <!-- aws --> blocks of a document.
func awsBlocks(doc string) []string {
	lines := strings.Split(doc, "\n")
	var out []string
	for i := 0; i+1 < len(lines); i++ {
		if !awsMarker.MatchString(strings.TrimSpace(lines[i])) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), fenceOpen) {
			continue
		}
		var body []string
		for i += 2; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fenceAnyEnd); i++ {
			body = append(body, lines[i])
		}
		out = append(out, strings.Join(body, "\n"))
	}
	return out
}

// checkNames reports (errorf) every stack value text names that the template does
// not have: placeholders and prose name parameters or outputs (or, for a
// physical name, resources), OutputKey an output, --logical-resource-id a
// resource.
func checkNames(errorf func(format string, args ...any), where, text string, n names) {
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if name == "LogicalId" { // any resource's, as in build-<LogicalId>
			continue
		}
		if strings.HasSuffix(m[0], "'s physical name>") {
			if !n.resources[name] {
				errorf("%s: %s names the resource %s, which template.yaml lacks", where, m[0], name)
			}
			continue
		}
		if !n.parameters[name] && !n.outputs[name] {
			errorf("%s: %s is neither a parameter nor an output of template.yaml", where, m[0])
		}
	}
	for _, m := range prose.FindAllStringSubmatch(text, -1) {
		switch kind, name := m[1], m[2]; {
		case kind == "parameter" && !n.parameters[name],
			kind == "output" && !n.outputs[name],
			kind == "stack's" && !n.parameters[name] && !n.outputs[name]:
			errorf("%s: %q names %s, which template.yaml does not have as a %s", where, m[0], name, kind)
		}
	}
	for _, m := range outputKey.FindAllStringSubmatch(text, -1) {
		if !n.outputs[m[1]] {
			errorf("%s: OutputKey %s is not an output of template.yaml", where, m[1])
		}
	}
	for _, m := range logicalID.FindAllStringSubmatch(text, -1) {
		if !n.resources[m[1]] {
			errorf("%s: --logical-resource-id %s is not a resource of template.yaml", where, m[1])
		}
	}
}

// TestDocsNameWhatTheTemplateHas: a parameter or output the docs name
// that the template lacks sends an operator looking for something that
// is not there.
func TestDocsNameWhatTheTemplateHas(t *testing.T) {
	n := templateNames(t)
	for _, doc := range docNamed {
		checkNames(t.Errorf, doc, readDoc(t, doc), n)
	}
}

// TestAWSBlocksNameWhatExists checks statically what the AWS blocks
// cannot run here: every stack value, parameter given as Name=value,
// event file, and script with its flags they name exists.
func TestAWSBlocksNameWhatExists(t *testing.T) {
	n := templateNames(t)
	root := repoRoot(t)
	for _, doc := range awsDocs {
		blocks := awsBlocks(readDoc(t, doc))
		if len(blocks) == 0 {
			t.Errorf("%s marks no block with <!-- aws -->", doc)
		}
		for i, b := range blocks {
			where := fmt.Sprintf("%s, aws block %d", doc, i+1)
			checkNames(t.Errorf, where, b, n)
			if strings.Contains(b, "--parameter-overrides") {
				t.Errorf("%s: --parameter-overrides replaces every parameter samconfig.toml saved; docs/deploy.md's \"Change one parameter\" is the one way", where)
			}
			for _, m := range override.FindAllStringSubmatch(b, -1) {
				if !n.parameters[m[1]] {
					t.Errorf("%s: %s= is not a parameter of template.yaml", where, m[1])
				}
			}
			for _, m := range eventFile.FindAllStringSubmatch(b, -1) {
				if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
					t.Errorf("%s: %s does not exist", where, m[1])
				}
			}
			for _, m := range scriptCall.FindAllStringSubmatch(strings.ReplaceAll(b, "\\\n", " "), -1) {
				checkScriptFlags(t, where, root, m[1], strings.Fields(m[2]))
			}
		}
	}
}

// checkScriptFlags: scripts/<name> exists and declares every flag given.
func checkScriptFlags(t *testing.T, where, root, name string, args []string) {
	t.Helper()
	dir := filepath.Join(root, "scripts", name)
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	if src.Len() == 0 {
		t.Errorf("%s: go run ./scripts/%s: no such command", where, name)
		return
	}
	for _, a := range args {
		m := flagUse.FindStringSubmatch(a)
		if m == nil {
			continue
		}
		flag, _, _ := strings.Cut(m[1], "=")
		// fs.String("name", ...) or fs.StringVar(&v, "name", ...)
		if !regexp.MustCompile(`[(,]\s*"` + regexp.QuoteMeta(flag) + `",`).MatchString(src.String()) {
			t.Errorf("%s: scripts/%s has no flag -%s", where, name, flag)
		}
	}
}

func TestNameChecksCatchMistakes(t *testing.T) {
	n := names{
		parameters: map[string]bool{"VaultAddress": true},
		outputs:    map[string]bool{"ApiUrl": true},
		resources:  map[string]bool{"StoreFunction": true},
	}
	cases := map[string]bool{ // text: passes
		"<ApiUrl>":                               true,
		"<VaultAddress>":                         true,
		"<ApiUrl output>":                        true,
		"<StoreFunction's physical name>":        true,
		"<ApiUrl's physical name>":               false,
		"<NoSuchOutput>":                         false,
		"OutputKey=='ApiUrl'":                    true,
		"OutputKey=='ApiURL'":                    false,
		"--logical-resource-id StoreFunction":    true,
		"--logical-resource-id RetrieveFunction": false,
		"the stack's `VaultAddress`":             true,
		"parameter `VaultAdress`":                false,
		"output `VaultAddress`":                  false,
	}
	for text, pass := range cases {
		var reported []string
		checkNames(func(f string, args ...any) { reported = append(reported, fmt.Sprintf(f, args...)) }, "case", text, n)
		if (len(reported) == 0) != pass {
			t.Errorf("checkNames(%q) reported %q; want it to pass: %v", text, reported, pass)
		}
	}
}
