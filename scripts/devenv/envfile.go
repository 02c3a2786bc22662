package devenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteEnvFile writes env as a file that both `source` and ReadEnvFile
// understand: `export KEY='value'` lines, so `source .local/dev.env`
// exports every key to the commands run after it (the README's
// `.cache/bin/vault kv get` needs VAULT_ADDR in its environment), and a
// value is never expanded by the shell. Mode 0600: it holds tokens and
// passwords.
func WriteEnvFile(path, header string, env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		b.WriteString("# " + line + "\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadEnvFile reads a file WriteEnvFile wrote, or plain KEY=value lines.
func ReadEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = shellUnquote(v)
		}
	}
	return out, nil
}

// shellQuote single-quotes s; a single quote inside ends the quoting,
// is escaped with a backslash and quoting starts again.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellUnquote(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'")
	}
	return s
}

// LocalDir is the local stack's folder: SMTP_VAULT_LOCAL, or .local in
// the repository.
func LocalDir() (string, error) {
	if d := os.Getenv("SMTP_VAULT_LOCAL"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".local"), nil
}

// LoadDevEnv sets each of keys that is unset in the environment from the
// local stack's dev.env, so operator commands run against `make run`
// without exporting anything; a missing dev.env changes nothing.
func LoadDevEnv(keys ...string) {
	dir, err := LocalDir()
	if err != nil {
		return
	}
	env, err := ReadEnvFile(filepath.Join(dir, "dev.env"))
	if err != nil {
		return
	}
	for _, k := range keys {
		if v, ok := env[k]; ok && os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}
