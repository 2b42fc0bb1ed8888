package bed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Debian's CTDB (package ctdb, 4.17 on Debian 12), for the side-by-side
// benchmark. Only the installed package is used; none of its code is in
// this repository.
//
// Debian's ctdbd takes its paths from compiled-in directories (CTDB_BASE is
// honoured only in CTDB's test mode, which also changes timings and turns
// off the public-address checks, so it is not used). Each node's ctdbd
// therefore runs in a mount namespace of its own (the one `ip netns exec`
// creates, whose mounts do not propagate back) with the node's directories
// bind-mounted over them:
//
//	<node>/debian/etc -> /etc/ctdb      (CTDB_BASE: ctdb.conf, nodes, public_addresses, events/legacy)
//	<node>/debian/run -> /run/ctdb      (pid file, event daemon socket)
//	<node>/debian/var -> /var/lib/ctdb  (databases)
//
// The control socket is <node>/debian/run/ctdbd.socket, named by
// CTDB_SOCKET (which 4.17 honours outside test mode) for the daemon, its
// event scripts and the CLI.
const (
	DebianCtdbd   = "/usr/sbin/ctdbd"
	DebianCtdb    = "/usr/bin/ctdb"
	debianEtc     = "/etc/ctdb"
	debianRun     = "/run/ctdb"
	debianVar     = "/var/lib/ctdb"
	debianDataDir = "/usr/share/ctdb/events/legacy"
)

// DebianScripts are the package's scripts enabled on a Debian install (the
// symlinks the package puts in /etc/ctdb/events/legacy).
var DebianScripts = []string{"00.ctdb", "01.reclock", "05.system", "10.interface"}

// DebianConfig is how UseDebianCTDB sets up the nodes.
type DebianConfig struct {
	// LogLevel is ctdb.conf's [logging] log level; "" means NOTICE.
	LogLevel string
	// EventScripts are installed executable as events/legacy/<name>.script
	// beside the package's DebianScripts: name (e.g. "50.probe") → body.
	EventScripts map[string]string
	// ConfExtra is appended to ctdb.conf as it is.
	ConfExtra string
}

// debian holds a bed's Debian mode; beds are keys, so Bed needs no field.
var debian sync.Map // *Bed → *DebianConfig

// EnsureDebianCTDB installs Debian's ctdb package with apt-get when
// /usr/sbin/ctdbd is missing. logf gets a line about what it does. The
// package's systemd unit is not started (no node list is configured).
func EnsureDebianCTDB(logf func(format string, args ...any)) error {
	if _, err := os.Stat(DebianCtdbd); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bed: %s is missing and only root can install it: apt-get install -y ctdb", DebianCtdbd)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("bed: %s is missing and there is no apt-get to install Debian's ctdb", DebianCtdbd)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, argv := range [][]string{{"apt-get", "update", "-qq"}, {"apt-get", "install", "-y", "-qq", "ctdb"}} {
		logf("%s", strings.Join(argv, " "))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("bed: %s: %w: %s", strings.Join(argv, " "), err, tail(string(out), 10))
		}
	}
	if _, err := os.Stat(DebianCtdbd); err != nil {
		return fmt.Errorf("bed: apt-get install ctdb left no %s: %w", DebianCtdbd, err)
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// UseDebianCTDB makes the bed run Debian's CTDB instead of ctdb-go: it
// writes every node's Debian layout and from then on Start runs
// /usr/sbin/ctdbd and Ctdb runs /usr/bin/ctdb. Call it after New and
// before the first Start. The bed's Config still decides the nodes, the
// public addresses and the cluster lock; its ctdb-go-only settings
// (tunables, events.d scripts, gossip, fencing) do not apply.
func (b *Bed) UseDebianCTDB(dc DebianConfig) error {
	for _, p := range []string{DebianCtdbd, DebianCtdb} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("bed: Debian's ctdb is not installed: %w", err)
		}
	}
	for i := range b.cfg.Nodes {
		if b.Daemon(i) != nil {
			return fmt.Errorf("bed: UseDebianCTDB after node %d started", i)
		}
	}
	if dc.LogLevel == "" {
		dc.LogLevel = "NOTICE"
	}
	// The mount points must exist; the package makes all but the run dir,
	// which on a live install systemd makes at service start.
	for _, d := range []string{debianEtc, debianRun, debianVar} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("bed: creating mount point %s: %w", d, err)
		}
	}
	for i := range b.cfg.Nodes {
		if err := b.writeDebianFiles(i, dc); err != nil {
			return fmt.Errorf("bed: node %d's Debian ctdb layout: %w", i, err)
		}
	}
	debian.Store(b, &dc)
	b.logf("bed %s: runs Debian's ctdb (%s)", b.id, DebianCtdbd)
	return nil
}

// DebianCTDB reports whether the bed runs Debian's CTDB.
func (b *Bed) DebianCTDB() bool {
	_, ok := debian.Load(b)
	return ok
}

func (b *Bed) debianMode() bool { return b.DebianCTDB() }

// debianDirs are node i's Debian directories: etc (CTDB_BASE), run, var.
func (b *Bed) debianDirs(np NodePaths) (etc, run, vr string) {
	d := filepath.Join(np.Dir, "debian")
	return filepath.Join(d, "etc"), filepath.Join(d, "run"), filepath.Join(d, "var")
}

// ConfigDir is the directory node i's daemon and event scripts see as
// CTDB_BASE, as a path in the harness's file system: Paths(i).Config for
// ctdb-go, <node>/debian/etc for Debian's CTDB (bind-mounted on
// /etc/ctdb). A script finds a file put here at "$CTDB_BASE/name".
func (b *Bed) ConfigDir(i int) string {
	if b.debianMode() {
		etc, _, _ := b.debianDirs(b.Paths(i))
		return etc
	}
	return b.Paths(i).Config
}

// debianSocket is the control socket of a Debian node.
func (b *Bed) debianSocket(np NodePaths) string {
	_, run, _ := b.debianDirs(np)
	return filepath.Join(run, "ctdbd.socket")
}

// debianDaemonArgv starts Debian's ctdbd in the foreground with the node's
// directories mounted over the compiled-in ones (see the top of this file).
func (b *Bed) debianDaemonArgv(np NodePaths) (argv, env []string) {
	etc, run, vr := b.debianDirs(np)
	script := `set -e
mount --bind "$1" ` + debianEtc + `
mount --bind "$2" ` + debianRun + `
mount --bind "$3" ` + debianVar + `
exec ` + DebianCtdbd + ` --interactive`
	return []string{"/bin/sh", "-c", script, "ctdbd", etc, run, vr},
		[]string{"CTDB_SOCKET=" + b.debianSocket(np)}
}

// debianCtdbArgv runs Debian's CLI against the node's socket, with the
// node's etc mounted on /etc/ctdb (the CLI reads the nodes file there).
func (b *Bed) debianCtdbArgv(np NodePaths, args []string) (argv, env []string) {
	etc, _, _ := b.debianDirs(np)
	script := `mount --bind "$1" ` + debianEtc + ` && shift && exec ` + DebianCtdb + ` "$@"`
	return append([]string{"/bin/sh", "-c", script, "ctdb", etc}, args...), []string{"CTDB_SOCKET=" + b.debianSocket(np)}
}

// debianConf renders a Debian node's ctdb.conf, as the reference run did.
func debianConf(logFile, logLevel, lock, extra string) string {
	var s strings.Builder
	s.WriteString("# written by the ctdb-go test bed (tests/bed) for Debian's ctdb\n")
	fmt.Fprintf(&s, "[logging]\n\tlocation = file:%s\n\tlog level = %s\n", logFile, logLevel)
	if lock != "" {
		fmt.Fprintf(&s, "[cluster]\n\tcluster lock = %s\n", lock)
	}
	s.WriteString("[legacy]\n\trealtime scheduling = false\n\tscript log level = ERROR\n")
	if extra != "" {
		s.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			s.WriteString("\n")
		}
	}
	return s.String()
}

// writeDebianFiles builds node i's Debian directories: a copy of the
// package's /etc/ctdb (functions, helper scripts, notification dir) with
// the bed's ctdb.conf, nodes and public_addresses, the package's default
// scripts enabled by symlink and the extra scripts as regular files.
func (b *Bed) writeDebianFiles(i int, dc DebianConfig) error {
	np := b.Paths(i)
	etc, run, vr := b.debianDirs(np)
	for _, d := range []string{etc, run, filepath.Join(vr, "volatile"), filepath.Join(vr, "persistent"), filepath.Join(vr, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := copyTree(debianEtc, etc); err != nil {
		return fmt.Errorf("copying %s: %w", debianEtc, err)
	}
	legacy := filepath.Join(etc, "events", "legacy")
	// Start from exactly the package's default set.
	old, _ := filepath.Glob(filepath.Join(legacy, "*.script"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		return err
	}
	for _, name := range DebianScripts {
		src := filepath.Join(debianDataDir, name+".script")
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("script %s: %w", name, err)
		}
		if err := os.Symlink(src, filepath.Join(legacy, name+".script")); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(dc.EventScripts))
	for n := range dc.EventScripts {
		names = append(names, n)
	}
	sort.Strings(names)
	cfg := &b.cfg
	lock := cfg.ClusterLock
	switch lock {
	case "", "file":
		lock = filepath.Join(b.root, "reclock")
	case "none":
		lock = ""
	}
	addrs := make([]string, cfg.Nodes)
	for k := range addrs {
		addrs[k] = b.NodeAddr(k).String()
	}
	files := []file{
		{"ctdb.conf", debianConf(np.Log, dc.LogLevel, lock, dc.ConfExtra), 0o644},
		{"nodes", strings.Join(addrs, "\n") + "\n", 0o644},
		{"public_addresses", publicAddressesFile(cfg.PublicAddrs, PublicIface), 0o644},
	}
	for _, n := range names {
		files = append(files, file{filepath.Join("events", "legacy", n+".script"), dc.EventScripts[n], 0o755})
	}
	for _, f := range files {
		p := filepath.Join(etc, f.Path)
		if err := os.WriteFile(p, []byte(f.Data), f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies directory src into dst: directories, regular files
// (with their modes) and symlinks (as they are).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(to)
			return os.Symlink(target, to)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, data, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(to, info.Mode().Perm())
		}
		return nil
	})
}

// NodeProcs lists the PIDs of the processes in node i's namespace other
// than the bed's own helpers: the daemon and whatever it started (Debian's
// ctdbd forks ctdb-recoverd and ctdb-eventd, which outlive a SIGKILLed
// parent for a moment).
func (b *Bed) NodeProcs(i int) ([]int, error) {
	if err := b.checkNode(i); err != nil {
		return nil, err
	}
	out, err := run([]string{"ip", "netns", "pids", b.nodes[i]}, "")
	if err != nil {
		return nil, fmt.Errorf("bed: node %d: %w", i, err)
	}
	var pids []int
	for _, f := range strings.Fields(out.Stdout) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// ReapNode waits, at most wait, until no process is left in node i's
// namespace (its daemon must have exited: Kill or Terminate first), then
// SIGKILLs what is left, by PID, and returns those PIDs. Only the bed
// starts processes in a node's namespace.
func (b *Bed) ReapNode(ctx context.Context, i int, wait time.Duration) ([]int, error) {
	if b.Running(i) {
		return nil, fmt.Errorf("bed: node %d: ctdbd still runs", i)
	}
	deadline := time.Now().Add(wait)
	for {
		pids, err := b.NodeProcs(i)
		if err != nil || len(pids) == 0 {
			return nil, err
		}
		if time.Now().After(deadline) {
			var errs []error
			for _, pid := range pids {
				if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("bed: node %d: killing pid %d: %w", i, pid, err))
				}
			}
			b.logf("node %d: killed leftover processes %v", i, pids)
			return pids, errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
