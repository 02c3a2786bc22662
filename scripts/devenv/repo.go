// Package devenv starts the real servers the project runs against locally
// (Vault and the MailU stand-in) and configures them. `make run` and the
// integration tests use it alike, so both see the same setup.
package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"smtp-vault/scripts/devenv/freeport"
)

// RepoRoot finds the repository root (the folder with the project's
// go.mod) from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module smtp-vault\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devenv: not inside the smtp-vault repository")
		}
		dir = parent
	}
}

// CacheDir is where built tool binaries are kept: SMTP_VAULT_CACHE, or
// .cache under the repository root.
func CacheDir() (string, error) {
	if d := os.Getenv("SMTP_VAULT_CACHE"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache"), nil
}

// VaultBinary is the Vault server built by `make vault`.
func VaultBinary() (string, error) {
	if p := os.Getenv("SMTP_VAULT_VAULT_BIN"); p != "" {
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "bin", "vault")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("devenv: no Vault server at %s: run `make vault` first (the test and run targets do)", p)
	}
	return p, nil
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// from below the kernel's ephemeral range so that no port-0 listener or
// outgoing connection takes it before the server binds it (freeport).
func FreeAddr() (string, error) { return freeport.Addr() }
