package bed

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` puts named namespaces.
const netnsDir = "/run/netns"

// netlinkRoute is the only netlink family the bed's handles need.
const netlinkRoute = unix.NETLINK_ROUTE

// creatorPID parses the PID out of a name the bed made with prefix
// ("<prefix><pid>-<seq>…"); ok is false for any other name.
func creatorPID(prefix, name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	digits, tail, found := strings.Cut(rest, "-")
	if !found || digits == "" || tail == "" {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Sweep removes what a crashed earlier run of the bed left behind: every
// namespace named prefix<pid>-… whose creating process <pid> no longer
// exists. It kills the processes still inside such a namespace (only the
// bed starts processes there), deletes the namespace, and removes that
// run's directory under the temp dir unless KEEP_BED=1. Namespaces of live
// runs and names it did not make are left alone. It returns what it
// removed.
func Sweep(prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bed: sweeping: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		pid, ok := creatorPID(prefix, e.Name())
		if !ok || alive(pid) {
			continue
		}
		if err := killInside(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := deleteNS(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	if os.Getenv("KEEP_BED") != "1" {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ctdb-go-bed-"+prefix+"*"))
		for _, d := range dirs {
			pid, ok := creatorPID(prefix, strings.TrimPrefix(filepath.Base(d), "ctdb-go-bed-"))
			if !ok || alive(pid) {
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, fmt.Errorf("bed: sweeping %s: %w", d, err))
				continue
			}
			removed = append(removed, d)
		}
	}
	return removed, errors.Join(errs...)
}

// killInside SIGKILLs every process in namespace ns.
func killInside(ns string) error {
	out, err := run([]string{"ip", "netns", "pids", ns}, "")
	if err != nil {
		return fmt.Errorf("bed: sweeping %s: %w", ns, err)
	}
	for _, f := range strings.Fields(out.Stdout) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("bed: sweeping %s: killing pid %d: %w", ns, pid, err)
		}
	}
	return nil
}

// deleteNS deletes a named namespace.
func deleteNS(ns string) error {
	out, err := run([]string{"ip", "netns", "delete", ns}, "")
	if err != nil {
		return fmt.Errorf("bed: deleting namespace %s: %w", ns, err)
	}
	if out.Code != 0 {
		return fmt.Errorf("bed: deleting namespace %s: %s", ns, strings.TrimSpace(out.Stderr))
	}
	return nil
}

// HandleSignals makes SIGINT, SIGTERM and SIGHUP close every open bed
// (CloseAll) and then exit the process with 128+signal. For test mains; a
// program that wants to print on Ctrl-C uses signal.NotifyContext and
// Close instead.
func HandleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "bed: %v: closing every test bed\n", sig)
		if err := CloseAll(); err != nil {
			fmt.Fprintf(os.Stderr, "bed: %v\n", err)
		}
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		os.Exit(code)
	}()
}
