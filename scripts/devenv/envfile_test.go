package devenv

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvFileRoundTrip: what WriteEnvFile writes, ReadEnvFile and a shell
// that sources it read back unchanged, and the shell exports every key to
// the commands it runs.
func TestEnvFileRoundTrip(t *testing.T) {
	env := map[string]string{
		"VAULT_ADDR":     "http://127.0.0.1:8200",
		"PLAIN":          "a,b,c",
		"QUOTE":          `it's "quoted"`,
		"SHELL_SPECIALS": "$HOME `id` ; & | * ~ \\",
		"EMPTY":          "",
	}
	path := filepath.Join(t.TempDir(), "dev.env")
	if err := WriteEnvFile(path, "a header\nover two lines", env); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, env) {
		t.Errorf("ReadEnvFile = %q, want %q", got, env)
	}
	// A child process (env) sees what `source` set: the keys are exported.
	cmd := exec.Command("bash", "-c", `source "$1" && env -0`, "bash", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			exported[k] = v
		}
	}
	for k, want := range env {
		if v, ok := exported[k]; !ok || v != want {
			t.Errorf("after source, a child sees %s=%q (set: %v), want %q", k, v, ok, want)
		}
	}
}

func TestReadEnvFileTakesPlainLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "functions.env")
	if err := os.WriteFile(path, []byte("# comment\nA=1\n\nB=x=y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"A": "1", "B": "x=y"}; !maps.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
