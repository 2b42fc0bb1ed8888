package ipalloc_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ipalloc is pure: no I/O, no clock, no logging. These packages must not
// be among its dependencies, direct or not.
var forbidden = []string{"os", "net", "syscall", "time", "log", "log/slog"}

// TestPureImports parses the package's (non-test) files and fails on a
// forbidden import.
func TestPureImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if isForbidden(p) {
				t.Errorf("%s imports %q; ipalloc must stay pure", f, p)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no package files found")
	}
}

// TestPureDeps asks the go command for every package ipalloc depends on,
// transitively, and fails on a forbidden one (fmt, for one, would bring in
// os and time).
func TestPureDeps(t *testing.T) {
	// go test puts $GOROOT/bin first on PATH, so this is the go command
	// running the test.
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/ctdb-go/ctdb-go/ipalloc" {
		t.Fatalf("go list -deps . = %v, want ipalloc's dependencies ending with ipalloc", deps)
	}
	for _, d := range deps {
		if isForbidden(d) {
			t.Errorf("ipalloc depends on %q; it must stay pure", d)
		}
	}
}

func isForbidden(p string) bool { return slices.Contains(forbidden, p) }
