package templatecheck

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The template is read as a yaml.Node tree rather than into structs: the
// CloudFormation short forms (!Ref, !Sub, !GetAtt) are local YAML tags that
// struct decoding rejects, and the checks want to see them as written.

// template is template.yaml as parsed, with its functions indexed.
type template struct {
	root      *yaml.Node          // the top-level mapping
	resources *yaml.Node          // Resources
	functions map[string]function // by folder name under functions/
}

// function is one AWS::Serverless::Function resource.
type function struct {
	name      string // folder name: functions/<name>/
	logicalID string
	node      *yaml.Node // the resource
}

// repoRoot is the module root: two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// loadTemplate parses template.yaml and indexes its functions by the folder
// their CodeUri names.
func loadTemplate(t *testing.T) *template {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("template.yaml is not a single YAML mapping")
	}
	tpl := &template{root: doc.Content[0], functions: map[string]function{}}
	tpl.resources = get(tpl.root, "Resources")
	if tpl.resources == nil || tpl.resources.Kind != yaml.MappingNode {
		t.Fatal("template.yaml has no Resources mapping")
	}
	for id, res := range entries(tpl.resources) {
		if literal(get(res, "Type")) != "AWS::Serverless::Function" {
			continue
		}
		uri := get(res, "Properties", "CodeUri")
		if !isLiteral(uri) {
			t.Errorf("%s: CodeUri must be a literal path, got %s", id, describe(uri))
			continue
		}
		dir := strings.TrimSuffix(uri.Value, "/")
		name, ok := strings.CutPrefix(dir, "functions/")
		if !ok || name == "" || strings.Contains(name, "/") {
			t.Errorf("%s: CodeUri %q is not functions/<name>/", id, uri.Value)
			continue
		}
		if prev, dup := tpl.functions[name]; dup {
			t.Errorf("functions/%s/ is the CodeUri of both %s and %s", name, prev.logicalID, id)
			continue
		}
		tpl.functions[name] = function{name: name, logicalID: id, node: res}
	}
	return tpl
}

// resourcesOfType returns the logical ids and nodes of one resource type.
func (tpl *template) resourcesOfType(typ string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for id, res := range entries(tpl.resources) {
		if literal(get(res, "Type")) == typ {
			out[id] = res
		}
	}
	return out
}

// property is a function's property, or the Globals.Function default.
func (tpl *template) property(fn function, key string) *yaml.Node {
	if n := get(fn.node, "Properties", key); n != nil {
		return n
	}
	return get(tpl.root, "Globals", "Function", key)
}

// get walks mapping keys; it returns nil when a key is missing or a node on
// the way is not a mapping.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// entries returns a mapping's values by key.
func entries(n *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

// sortedKeys returns a mapping's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isLiteral reports whether n is a plain scalar (no intrinsic function).
func isLiteral(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && (n.Tag == "" || strings.HasPrefix(n.Tag, "!!"))
}

// literal is n's value if it is a plain scalar, else "".
func literal(n *yaml.Node) string {
	if !isLiteral(n) {
		return ""
	}
	return n.Value
}

// literals is a sequence of plain scalars.
func literals(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, literal(c))
	}
	return out
}

// intrinsic returns the name and argument of an intrinsic function in
// either form: the short tag (!Ref X) or the long mapping ({Ref: X},
// {"Fn::GetAtt": [A, B]}). The name is returned in long form ("Ref",
// "Fn::GetAtt").
func intrinsic(n *yaml.Node) (string, *yaml.Node, bool) {
	if n == nil {
		return "", nil, false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		return name, n, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, n.Content[1], true
		}
	}
	return "", nil, false
}

// refTarget is X in !Ref X or {Ref: X}.
func refTarget(n *yaml.Node) string {
	name, arg, ok := intrinsic(n)
	if !ok || name != "Ref" || arg.Kind != yaml.ScalarNode {
		return ""
	}
	return arg.Value
}

// getAtt splits !GetAtt A.B, !GetAtt [A, B] or {"Fn::GetAtt": [A, B]}.
func getAtt(n *yaml.Node) (resource, attribute string) {
	name, arg, ok := intrinsic(n)
	if !ok || name != "Fn::GetAtt" {
		return "", ""
	}
	switch arg.Kind {
	case yaml.ScalarNode:
		resource, attribute, _ = strings.Cut(arg.Value, ".")
	case yaml.SequenceNode:
		if len(arg.Content) == 2 {
			resource, attribute = arg.Content[0].Value, arg.Content[1].Value
		}
	}
	return resource, attribute
}

// subString is the template string of !Sub "..." or {"Fn::Sub": "..."}.
func subString(n *yaml.Node) string {
	name, arg, ok := intrinsic(n)
	if !ok || name != "Fn::Sub" || arg.Kind != yaml.ScalarNode {
		return ""
	}
	return arg.Value
}

// describe renders a node for an error message.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return n.Value
	}
	return strings.TrimSpace(string(out))
}
