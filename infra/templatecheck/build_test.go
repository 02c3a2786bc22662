package templatecheck

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wantBuildSettings are the settings every function binary must be built
// with, as its embedded build info records them: what `sam build` deploys
// is static linux/arm64 for provided.al2023 without the RPC mode of
// aws-lambda-go. (Go leaves -ldflags out of the build info under
// -trimpath; checkStaticARM64 sees -s -w in the file itself.)
var wantBuildSettings = map[string]string{
	"GOOS":        "linux",
	"GOARCH":      "arm64",
	"CGO_ENABLED": "0",
	"-trimpath":   "true",
	"-tags":       "lambda.norpc",
}

// makeTarget runs `make build-<LogicalId>` the way SAM's makefile builder
// does: from the repository root with ARTIFACTS_DIR in the environment.
func makeTarget(t *testing.T, logicalID, artifacts string, dryRun bool) (string, error) {
	t.Helper()
	args := []string{"--no-print-directory", "build-" + logicalID}
	if dryRun {
		args = append([]string{"-n"}, args...)
	}
	cmd := exec.Command("make", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestEveryFunctionHasABuildTarget: each function of the template has a
// build-<LogicalId> target that builds its own folder into
// $(ARTIFACTS_DIR)/bootstrap (a dry run, so it costs nothing).
func TestEveryFunctionHasABuildTarget(t *testing.T) {
	tpl := loadTemplate(t)
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		out, err := makeTarget(t, fn.logicalID, "/artifacts", true)
		if err != nil {
			t.Errorf("make -n build-%s: %v\n%s", fn.logicalID, err, out)
			continue
		}
		if !strings.Contains(out, "./functions/"+name+"\n") || !strings.Contains(out, `-o "/artifacts/bootstrap"`) {
			t.Errorf("make build-%s does not build ./functions/%s into $(ARTIFACTS_DIR)/bootstrap:\n%s", fn.logicalID, name, out)
		}
	}
}

// TestBuildTargetsMakeStaticARM64 runs every build target as SAM does and
// checks the artifact: a static, stripped linux/arm64 ELF built with the
// settings above. The targets run one after another: the first compiles
// the packages the functions share for arm64, the others mostly link.
func TestBuildTargetsMakeStaticARM64(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		dir := t.TempDir()
		if out, err := makeTarget(t, fn.logicalID, dir, false); err != nil {
			t.Errorf("ARTIFACTS_DIR=%s make build-%s: %v\n%s", dir, fn.logicalID, err, out)
			continue
		}
		bin := filepath.Join(dir, "bootstrap")
		if err := checkStaticARM64(bin); err != "" {
			t.Errorf("make build-%s: %s", fn.logicalID, err)
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Errorf("make build-%s: no Go build info: %v", fn.logicalID, err)
			continue
		}
		if want := "smtp-vault/functions/" + name; info.Path != want {
			t.Errorf("make build-%s built %s, want %s", fn.logicalID, info.Path, want)
		}
		got := map[string]string{}
		for _, s := range info.Settings {
			got[s.Key] = s.Value
		}
		for k, want := range wantBuildSettings {
			if got[k] != want {
				t.Errorf("make build-%s: build setting %s = %q, want %q", fn.logicalID, k, got[k], want)
			}
		}
	}
}

// checkStaticARM64 says what is wrong with the ELF file at path, or "".
func checkStaticARM64(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "not an ELF file: " + err.Error()
	}
	defer f.Close()
	var problems []string
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		problems = append(problems, "machine "+f.Machine.String()+" "+f.Class.String()+", want EM_AARCH64 ELFCLASS64")
	}
	for _, p := range f.Progs {
		// An interpreter or a dynamic segment means the binary needs a
		// dynamic loader and libc that provided.al2023 need not match.
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			problems = append(problems, "has a "+p.Type.String()+" segment (dynamically linked)")
		}
	}
	if f.Section(".dynamic") != nil {
		problems = append(problems, "has a .dynamic section")
	}
	for _, sec := range f.Sections {
		switch {
		case sec.Name == ".symtab":
			problems = append(problems, "has a symbol table (not stripped with -s)")
		case strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_"):
			problems = append(problems, "has DWARF section "+sec.Name+" (not built with -w)")
		}
	}
	return strings.Join(problems, "; ")
}

// TestCheckStaticARM64RefusesAHostShell: the check is not vacuous; the
// host's shell is a dynamically linked binary of another machine.
func TestCheckStaticARM64RefusesAHostShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	sh, err = filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	got := checkStaticARM64(sh)
	for _, want := range []string{"PT_INTERP", ".dynamic"} {
		if !strings.Contains(got, want) {
			t.Errorf("checkStaticARM64(%s) = %q, want it to name %s", sh, got, want)
		}
	}
}
