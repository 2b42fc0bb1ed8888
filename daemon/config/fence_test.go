package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFenceScripts(t *testing.T) {
	const marked = "#!/bin/sh\n# 90.fence: fences\n#   ctdb-go:  handles   fence  \nexit 0\n"
	const unmarked = "#!/bin/sh\n# ctdb-go: handles fencing\necho '# ctdb-go: handles fence'\nexit 0\n"
	dir := t.TempDir()
	for _, f := range []struct {
		name, content string
		mode          os.FileMode
	}{
		{"90.fence", marked, 0o755},
		{"10.interface", unmarked, 0o755},
		{"91.fence-disabled", marked, 0o644},
		{"92.fence.script", marked, 0o755},
		{"93.both", marked, 0o644},
		{"93.both.script", marked, 0o755},
		{"95.fence~", marked, 0o755},
		{"96.fence.options", marked, 0o755},
		{"97.fence.dpkg-old", marked, 0o755},
		{"fence", marked, 0o755},
		{"05.early", "#!/bin/sh\n#ctdb-go: handles fence\n", 0o755},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("90.fence", filepath.Join(dir, "94.link")); err != nil {
		t.Fatal(err)
	}
	got, err := FenceScripts(dir)
	if err != nil {
		t.Fatalf("FenceScripts: %v", err)
	}
	var want []string
	for _, n := range []string{"05.early", "90.fence", "92.fence.script", "93.both.script", "94.link"} {
		want = append(want, filepath.Join(dir, n))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FenceScripts (-want +got):\n%s", diff)
	}
	if _, err := FenceScripts(filepath.Join(dir, "nope")); err == nil {
		t.Error("FenceScripts of a missing dir: no error")
	}
}

func TestFenceNeedsScript(t *testing.T) {
	const script = "#!/bin/sh\n" + FenceMarker + "\nexit 0\n"
	tests := []struct {
		name  string
		files map[string]string
		mode  os.FileMode
		errs  []string
	}{
		{
			name:  "no events.d",
			files: map[string]string{"ctdb.conf": "[failover]\n\tfence = true\n"},
			errs:  []string{"DIR/ctdb.conf:2: [failover] fence = true, but DIR/events.d: cannot open: no such file or directory"},
		},
		{
			name:  "no script handles it",
			files: map[string]string{"ctdb.conf": "# fencing\n[failover]\nfence = yes\n", "events.d/10.interface": "#!/bin/sh\n"},
			mode:  0o755,
			errs:  []string{`DIR/ctdb.conf:3: [failover] fence = true, but no enabled script in DIR/events.d handles fencing: enable one that carries the line "# ctdb-go: handles fence" (e.g. ctdb event script enable 90.fence-ipmi), or set fence = false`},
		},
		{
			name:  "the script is disabled",
			files: map[string]string{"ctdb.conf": "[failover]\nfence = true\n", "events.d/90.fence": script},
			mode:  0o644,
			errs:  []string{`DIR/ctdb.conf:2: [failover] fence = true, but no enabled script in DIR/events.d handles fencing: enable one that carries the line "# ctdb-go: handles fence" (e.g. ctdb event script enable 90.fence-ipmi), or set fence = false`},
		},
		{
			name:  "an enabled script handles it",
			files: map[string]string{"ctdb.conf": "[failover]\nfence = true\n", "events.d/90.fence": script},
			mode:  0o755,
		},
		{
			name:  "fence off needs nothing",
			files: map[string]string{"ctdb.conf": "[failover]\nfence = false\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, tt.files)
			for name := range tt.files {
				if filepath.Dir(name) == "events.d" {
					if err := os.Chmod(filepath.Join(dir, name), tt.mode); err != nil {
						t.Fatal(err)
					}
				}
			}
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err == nil && c.Conf.Failover.Fence != (tt.name == "an enabled script handles it") {
				t.Errorf("Fence = %v", c.Conf.Failover.Fence)
			}
		})
	}
}
