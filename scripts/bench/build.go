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

// build compiles one function stripped, as it is deployed but for the host
// architecture: -trimpath -ldflags='-s -w', CGO_ENABLED=0. It returns the
// binary's path.
func build(root, fn, goos, outDir string) (string, error) {
	out := filepath.Join(outDir, goos, fn, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./functions/"+fn)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("GOOS=%s GOARCH=%s go build ./functions/%s: %v\n%s", goos, runtime.GOARCH, fn, err, bytes.TrimSpace(msg))
	}
	return out, nil
}
