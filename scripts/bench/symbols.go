package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

// sizeShare is one line of the symbol report: a module or package and
// the bytes its symbols take in the binary's code and data.
type sizeShare struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// symbolReport says what makes up a function's arm64 binary: the stripped
// file's sections, and the code and data symbols of an unstripped build
// with the same flags (as `go tool nm -size` lists them), summed by module
// and by package. The line table (.gopclntab) grows with the code and is
// not attributed.
type symbolReport struct {
	Function string      `json:"function"`
	Sections []sizeShare `json:"sections"`
	Modules  []sizeShare `json:"modules"`
	Packages []sizeShare `json:"packages"`
}

// symbols builds fn for linux/arm64 as its build target does, but keeping
// the symbol table, and attributes the symbols.
func symbols(root, fn, tmp string) (symbolReport, error) {
	rep := symbolReport{Function: fn}
	bin := filepath.Join(tmp, "symbols", fn)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags=-w", "-o", bin, "./functions/"+fn)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return rep, fmt.Errorf("go build ./functions/%s with symbols: %v\n%s", fn, err, bytes.TrimSpace(msg))
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return rep, err
	}
	modules := []string{info.Main.Path}
	for _, d := range info.Deps {
		modules = append(modules, d.Path)
	}
	// The longest module path wins: aws-sdk-go-v2/service/s3 is its own.
	sort.Slice(modules, func(i, j int) bool { return len(modules[i]) > len(modules[j]) })

	f, err := elf.Open(bin)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOBITS && sec.Flags&elf.SHF_ALLOC != 0 && sec.Size > 0 {
			rep.Sections = append(rep.Sections, sizeShare{sec.Name, int64(sec.Size)})
		}
	}
	syms, err := f.Symbols()
	if err != nil {
		return rep, err
	}
	byModule, byPackage := map[string]int64{}, map[string]int64{}
	for _, s := range syms {
		if int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) || s.Size == 0 {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS { // .bss, .noptrbss: no bytes in the file
			continue
		}
		pkg := symbolPackage(s.Name)
		byPackage[pkg] += int64(s.Size)
		byModule[moduleOf(pkg, modules)] += int64(s.Size)
	}
	rep.Modules, rep.Packages = sortedShares(byModule), sortedShares(byPackage)
	return rep, nil
}

// symbolPackage is the import path in a Go symbol name:
// "github.com/a/b.(*T).M" and "github.com/a/b.F[...]" give github.com/a/b;
// the compiler's own symbols (go:func.*, type:*) are their prefix.
func symbolPackage(name string) string {
	if p, _, ok := strings.Cut(name, ":"); ok && !strings.Contains(p, "/") && !strings.Contains(p, ".") {
		return p + ":"
	}
	if i := strings.IndexAny(name, "[("); i >= 0 {
		name = name[:i]
	}
	// The linker writes a dot in the last element of a path as %2e
	// (gopkg.in/yaml%2ev3), so the first dot after the last slash ends it.
	slash := strings.LastIndex(name, "/")
	pkg := name
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		pkg = name[:slash+1+dot]
	}
	return strings.ReplaceAll(pkg, "%2e", ".")
}

// moduleOf names the module that holds pkg, or "std" (and the compiler's
// own symbols) when none does.
func moduleOf(pkg string, modules []string) string {
	for _, m := range modules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	if strings.HasSuffix(pkg, ":") {
		return "runtime metadata (" + pkg + ")"
	}
	return "std"
}

func sortedShares(m map[string]int64) []sizeShare {
	out := make([]sizeShare, 0, len(m))
	for k, v := range m {
		out = append(out, sizeShare{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Bytes > out[j].Bytes || out[i].Bytes == out[j].Bytes && out[i].Name < out[j].Name
	})
	return out
}

func printSymbols(w io.Writer, rep symbolReport, top int) {
	fmt.Fprintf(w, "\n%s, linux/arm64: what the binary is made of (sections of the file; symbols of an unstripped build by module and package)\n", rep.Function)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var file int64
	for _, s := range rep.Sections {
		file += s.Bytes
	}
	for _, s := range rep.Sections {
		fmt.Fprintf(tw, "%.2f MB\t%4.1f%%\t %s\t\n", float64(s.Bytes)/1e6, 100*float64(s.Bytes)/float64(file), s.Name)
	}
	tw.Flush()
	for _, part := range []struct {
		title  string
		shares []sizeShare
	}{{"modules", rep.Modules}, {"packages", rep.Packages}} {
		fmt.Fprintf(w, "\nlargest %s (code and data symbols):\n", part.title)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for i, s := range part.shares {
			if i == top {
				break
			}
			fmt.Fprintf(tw, "%.2f MB\t %s\t\n", float64(s.Bytes)/1e6, s.Name)
		}
		tw.Flush()
	}
}
