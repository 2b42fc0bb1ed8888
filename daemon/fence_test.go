package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

// TestFenceConfirmed: a fence counts only when a script that handles
// fencing ran and succeeded; other scripts exit 0 for any event they do
// not know, so their success proves nothing (fail closed).
func TestFenceConfirmed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("10.interface", "#!/bin/sh\nexit 0\n", 0o755)
	write("90.fence-ipmi", "#!/bin/sh\n# ctdb-go: handles fence\nexit 0\n", 0o755)
	write("91.fence-off", "#!/bin/sh\n# ctdb-go: handles fence\nexit 0\n", 0o644) // disabled
	ok := func(names ...string) eventscript.Result {
		r := eventscript.Result{Event: "fence", Status: eventscript.StatusOK}
		for _, n := range names {
			r.Scripts = append(r.Scripts, eventscript.ScriptResult{Name: n, State: eventscript.ScriptOK})
		}
		return r
	}
	tests := []struct {
		name string
		r    eventscript.Result
		ok   bool
	}{
		{"the fence script succeeded", ok("10.interface", "90.fence-ipmi"), true},
		{"only scripts that do not fence ran", ok("10.interface"), false},
		{"no script ran", ok(), false},
		{"a disabled fence script cannot confirm", ok("10.interface", "91.fence-off"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := fenceConfirmed(dir, tt.r); (err == nil) != tt.ok {
				t.Errorf("fenceConfirmed = %v, want success %v", err, tt.ok)
			}
		})
	}
}
