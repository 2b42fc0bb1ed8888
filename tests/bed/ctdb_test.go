package bed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Debian's ctdbd gets the keys of the reference run (ctdb-cli-samples.txt)
// and none of ctdb-go's own (name, gossip port, fence), which its strict
// parser would refuse.
func TestDebianConf(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		log, level, lock, xtra string
		want                   string
	}{
		{"reference", "/r/n0/log.ctdbd", "NOTICE", "/r/reclock", "", `# written by the ctdb-go test bed (tests/bed) for Debian's ctdb
[logging]
	location = file:/r/n0/log.ctdbd
	log level = NOTICE
[cluster]
	cluster lock = /r/reclock
[legacy]
	realtime scheduling = false
	script log level = ERROR
`},
		{"no lock, extra", "/l", "INFO", "", "[database]\n\ttdb mutexes = false", `# written by the ctdb-go test bed (tests/bed) for Debian's ctdb
[logging]
	location = file:/l
	log level = INFO
[legacy]
	realtime scheduling = false
	script log level = ERROR
[database]
	tdb mutexes = false
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, debianConf(tc.log, tc.level, tc.lock, tc.xtra)); diff != "" {
				t.Errorf("debianConf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "events", "legacy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "functions"), []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "notify.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/ctdb/events/legacy/00.ctdb.script", filepath.Join(src, "events", "legacy", "00.ctdb.script")); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dst, "functions")); err != nil || string(data) != "f\n" {
		t.Errorf("functions = %q, %v", data, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "notify.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("notify.sh: %v, %v; want mode 0755", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "events", "legacy", "00.ctdb.script")); err != nil || target != "/usr/share/ctdb/events/legacy/00.ctdb.script" {
		t.Errorf("symlink = %q, %v; want it copied as a symlink", target, err)
	}
}
