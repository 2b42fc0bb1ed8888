package eventscript

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// scriptSuffix is CTDB's file name suffix; the script's name is without it.
const scriptSuffix = ".script"

// ignoredSuffixes mark editor and package-manager leftovers, and per-script
// option files (NN.name.options, read by load_script_options, never run);
// ".rpm" and ".dpkg" match anywhere after the name (".rpmnew", ".dpkg-old").
var (
	ignoredSuffixes = []string{"~", ".swp", ".swo", ".bak", ".orig", ".options"}
	ignoredInfixes  = []string{".rpm", ".dpkg"}
)

// script is one file in the events dir.
type script struct {
	name    string // shown name, without ".script"
	path    string
	enabled bool
}

// scriptName returns the script name of a file name, or false when the
// file is not a script.
func scriptName(file string) (string, bool) {
	for _, s := range ignoredSuffixes {
		if strings.HasSuffix(file, s) {
			return "", false
		}
	}
	for _, s := range ignoredInfixes {
		if strings.Contains(file, s) {
			return "", false
		}
	}
	name := strings.TrimSuffix(file, scriptSuffix)
	if !validName(name) {
		return "", false
	}
	return name, true
}

// validName reports whether name is a script name: two digits, a dot and
// at least one more character, no slash.
func validName(name string) bool {
	return len(name) >= 4 &&
		isDigit(name[0]) && isDigit(name[1]) && name[2] == '.' &&
		!strings.ContainsRune(name, '/')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// list reads the events dir: scripts sorted by name.
func (r *Runner) list() ([]script, error) {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("reading events dir: %w", err)
	}
	byName := make(map[string]script)
	for _, e := range entries {
		file := e.Name()
		name, ok := scriptName(file)
		if !ok {
			continue
		}
		s := script{name: name, path: filepath.Join(r.dir, file)}
		fi, err := os.Stat(s.path)
		switch {
		case err != nil && e.Type()&os.ModeSymlink != 0:
			// Dangling symlink: listed, disabled (as CTDB).
		case err != nil:
			r.log.Warn("skipping unreadable event script", "script", file, "err", err)
			continue
		case fi.IsDir():
			continue
		default:
			s.enabled = fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0
		}
		if prev, dup := byName[name]; dup {
			keep, drop := prev, s
			if strings.HasSuffix(file, scriptSuffix) {
				keep, drop = s, prev
			}
			r.log.Warn("two files for one event script; ignoring one",
				"script", name, "using", filepath.Base(keep.path), "ignored", filepath.Base(drop.path))
			s = keep
		}
		byName[name] = s
	}
	out := make([]script, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b script) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// Scripts lists the events dir's scripts in run order.
func (r *Runner) Scripts() ([]control.Script, error) {
	ss, err := r.list()
	if err != nil {
		return nil, err
	}
	out := make([]control.Script, 0, len(ss))
	for _, s := range ss {
		out = append(out, control.Script{Name: s.name, Enabled: s.enabled})
	}
	return out, nil
}

// scriptError is Enable's and Disable's error: CTDB's message, wrapping the
// errno CTDB answers with (ENOENT: no such script; EINVAL: invalid name or
// not a regular file), so errors.Is(err, fs.ErrNotExist) works.
type scriptError struct {
	msg   string
	errno syscall.Errno
}

func (e *scriptError) Error() string { return e.msg }
func (e *scriptError) Unwrap() error { return e.errno }

// Enable makes script name executable (u, g and o), as `ctdb event script
// enable` does. name is without ".script" (with it is accepted too).
func (r *Runner) Enable(name string) error { return r.chmod(name, true) }

// Disable clears script name's x bits, as `ctdb event script disable`.
func (r *Runner) Disable(name string) error { return r.chmod(name, false) }

func (r *Runner) chmod(name string, enable bool) error {
	name = strings.TrimSuffix(name, scriptSuffix)
	if n, ok := scriptName(name); !ok || n != name {
		return &scriptError{fmt.Sprintf("script %s is invalid", name), syscall.EINVAL}
	}
	ss, err := r.list()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ss, func(s script) bool { return s.name == name })
	if i < 0 {
		return &scriptError{fmt.Sprintf("script %s does not exist in %s", name, r.dir), syscall.ENOENT}
	}
	fi, err := os.Lstat(ss[i].path)
	if err != nil {
		return fmt.Errorf("reading script %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return &scriptError{fmt.Sprintf("script %s is not a regular file (%s): change it where it points", name, fi.Mode().Type()), syscall.EINVAL}
	}
	mode := fi.Mode().Perm()
	if enable {
		mode |= 0o111
	} else {
		mode &^= 0o111
	}
	if err := os.Chmod(ss[i].path, mode); err != nil {
		return fmt.Errorf("changing mode of script %s: %w", name, err)
	}
	verb := "disabled"
	if enable {
		verb = "enabled"
	}
	r.log.Info("event script "+verb, "script", name)
	return nil
}
