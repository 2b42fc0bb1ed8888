package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FenceMarker is the line an events.d script carries to say that it
// handles the fence event (`fence PNN ADDRESS`): with [failover] fence =
// true, ctdbd refuses to start unless an enabled script has it, since a
// fence event that no script acts on would "succeed" without fencing
// anything. The line may sit anywhere in the script's first 64 KiB;
// blanks around and between its words do not matter:
//
//	# ctdb-go: handles fence
const FenceMarker = "# ctdb-go: handles fence"

// fenceMarkerWindow is how much of a script FenceScripts reads.
const fenceMarkerWindow = 64 << 10

// FenceScripts returns the paths, in run order, of the enabled scripts in
// eventsDir (<config-dir>/events.d) that carry FenceMarker. Scripts are
// found as the event script runner finds them: files named NN.name or
// NN.name.script, not editor or package-manager leftovers (~, .swp, .bak,
// .orig, .rpm*, .dpkg*) or .options files; enabled means an executable
// regular file (symlinks followed). A missing or unreadable eventsDir is
// an error; a script that cannot be read is skipped.
func FenceScripts(eventsDir string) ([]string, error) {
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		return nil, fmt.Errorf("reading events dir: %w", err)
	}
	byName := map[string]string{} // script name -> file
	for _, e := range entries {
		name, ok := eventScriptName(e.Name())
		if !ok {
			continue
		}
		// Of NN.name and NN.name.script, the runner uses the latter.
		if prev, dup := byName[name]; dup && strings.HasSuffix(prev, ".script") {
			continue
		}
		byName[name] = e.Name()
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		path := filepath.Join(eventsDir, byName[n])
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
			continue
		}
		if ok, err := hasFenceMarker(path); err == nil && ok {
			out = append(out, path)
		}
	}
	return out, nil
}

// hasFenceMarker reports whether the script at path carries FenceMarker.
func hasFenceMarker(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	want := strings.Fields(strings.TrimPrefix(FenceMarker, "#"))
	sc := bufio.NewScanner(io.LimitReader(f, fenceMarkerWindow))
	sc.Buffer(make([]byte, 4096), fenceMarkerWindow)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "#")
		if ok && slices.Equal(strings.Fields(rest), want) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return false, err
	}
	return false, nil
}

// eventScriptName is eventscript's rule for which files in events.d are
// scripts (kept in step with daemon/eventscript/scripts.go): NN.name or
// NN.name.script, without leftovers' and option files' suffixes.
func eventScriptName(file string) (string, bool) {
	for _, s := range []string{"~", ".swp", ".swo", ".bak", ".orig", ".options"} {
		if strings.HasSuffix(file, s) {
			return "", false
		}
	}
	if strings.Contains(file, ".rpm") || strings.Contains(file, ".dpkg") {
		return "", false
	}
	name := strings.TrimSuffix(file, ".script")
	if len(name) < 4 || !isDigit(name[0]) || !isDigit(name[1]) || name[2] != '.' {
		return "", false
	}
	return name, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// checkFence refuses [failover] fence = true without a script that
// handles the fence event.
func (c *Config) checkFence(confPath string, where confLines, p *problems) {
	if !c.Conf.Failover.Fence {
		return
	}
	dir := filepath.Join(c.Dir, "events.d")
	scripts, err := FenceScripts(dir)
	switch {
	case err != nil:
		p.errorf(confPath, where["failover/fence"], "[failover] fence = true, but %s: %s", dir, fileProblem(errors.Unwrap(err)))
	case len(scripts) == 0:
		p.errorf(confPath, where["failover/fence"],
			"[failover] fence = true, but no enabled script in %s handles fencing: enable one that carries the line %q (e.g. ctdb event script enable 90.fence-ipmi), or set fence = false",
			dir, FenceMarker)
	}
}
