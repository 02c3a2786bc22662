package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// repoRoot finds the module root (the go.mod of smtp-vault) from the
// working directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module smtp-vault\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the smtp-vault repository")
		}
		dir = parent
	}
}

// functionNames lists the folders under functions/, sorted.
func functionNames(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// build compiles one function for this host as the Makefile's build
// targets do for arm64 (-trimpath -ldflags='-s -w' -tags lambda.norpc,
// CGO_ENABLED=0), to time its cold start here. It returns the binary's
// path.
func build(root, fn, goos, outDir string) (string, error) {
	out := filepath.Join(outDir, goos, fn, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", out, "./functions/"+fn)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("GOOS=%s GOARCH=%s go build ./functions/%s: %v\n%s", goos, runtime.GOARCH, fn, err, bytes.TrimSpace(msg))
	}
	return out, nil
}

// buildArtifact runs the function's SAM build target, `make
// build-<LogicalId>` with ARTIFACTS_DIR, and returns the bootstrap it
// wrote: the linux/arm64 binary that deploys.
func buildArtifact(root, logicalID, outDir string) (string, error) {
	dir := filepath.Join(outDir, "sam", logicalID)
	cmd := exec.Command("make", "-s", "--no-print-directory", "build-"+logicalID)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+dir)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ARTIFACTS_DIR=%s make build-%s: %v\n%s", dir, logicalID, err, bytes.TrimSpace(msg))
	}
	return filepath.Join(dir, "bootstrap"), nil
}

// logicalIDs maps each function folder to its resource in template.yaml
// (CodeUri functions/<name>/), whose SAM build target is build-<LogicalId>.
func logicalIDs(root string) (map[string]string, error) {
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	// A yaml.Node tree: the template's !Ref and !Sub tags stay opaque.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) != 1 {
		return nil, fmt.Errorf("parse template.yaml: %v", err)
	}
	resources := mapValue(doc.Content[0], "Resources")
	if resources == nil {
		return nil, errors.New("template.yaml has no Resources")
	}
	out := map[string]string{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if t := mapValue(res, "Type"); t == nil || t.Value != "AWS::Serverless::Function" {
			continue
		}
		uri := mapValue(mapValue(res, "Properties"), "CodeUri")
		if uri == nil {
			continue
		}
		if name, ok := strings.CutPrefix(strings.TrimSuffix(uri.Value, "/"), "functions/"); ok {
			out[name] = id
		}
	}
	return out, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
