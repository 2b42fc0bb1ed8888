package clusterlock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HelperFlag is the ctdbd flag that runs RunFcntlHelper.
const HelperFlag = "--lock-helper"

// SelfHelperSpec turns a file lock spec into one that runs ctdbd's own
// helper (exe --lock-helper FILE) through CTDB's mutex-helper protocol.
// Held inside ctdbd, an fcntl lock outlives a frozen ctdbd (SIGSTOP, or a
// hang in the kernel): the leader would keep the lock and nobody could
// take over. The helper lets the lock go when its parent is stopped or
// gone. Specs that are not plain paths, or paths with spaces (the helper
// protocol splits on them), are returned unchanged.
func SelfHelperSpec(spec, exe string) string {
	if len(spec) == 0 || spec[0] != '/' || bytes.ContainsAny([]byte(spec+exe), " \t") {
		return spec
	}
	return "!" + exe + " " + HelperFlag + " " + spec
}

// helperPoll is how often the helper checks its parent.
const helperPoll = 100 * time.Millisecond

// helperConfig is what RunFcntlHelper reads from its environment, and
// the tests' seam.
type helperConfig struct {
	recheck      time.Duration // between checks of the lock
	checkTimeout time.Duration // one check takes longer: give up the lock
	checkHook    func()        // runs before each check (tests)
}

// RunFcntlHelper is the lock helper's main: it takes an fcntl write lock on
// byte 0 of path and answers with CTDB's protocol on stdout ('0' taken,
// '1' contention, '3' error), then holds the lock until SIGTERM, until its
// parent exits or is stopped, or until a check fails. It returns the exit
// code.
//
// Every RecheckInterval ($CTDB_LOCK_HELPER_RECHECK, default 5 s) it checks
// that path still names the locked file and that the lock manager answers
// (a test lock on byte 1), and writes another '0' when the check passed,
// so that ctdbd knows the lock is confirmed (CTDB ignores bytes after
// the first). A check that takes longer than CheckTimeout
// ($CTDB_LOCK_HELPER_CHECK_TIMEOUT, default 10 s) ends the helper: the
// lock cannot be confirmed. The check runs on a goroutine of its own, so
// a system call hung on the filesystem does not stop the helper from
// watching its parent or giving up; if the hung call keeps the process
// from exiting, ctdbd misses the '0's and kills it.
func RunFcntlHelper(path string, stdout, stderr io.Writer) int {
	return runFcntlHelper(path, stdout, stderr, helperConfigFromEnv(stderr))
}

// helperConfigFromEnv reads the helper's intervals from its environment.
func helperConfigFromEnv(stderr io.Writer) helperConfig {
	cfg := helperConfig{recheck: defaultRecheckInterval, checkTimeout: defaultCheckTimeout}
	for env, d := range map[string]*time.Duration{helperRecheckEnv: &cfg.recheck, helperCheckTimeoutEnv: &cfg.checkTimeout} {
		if v := os.Getenv(env); v != "" {
			if x, err := time.ParseDuration(v); err == nil && x > 0 {
				*d = x
			} else {
				fmt.Fprintf(stderr, "ignoring %s=%q: want a positive duration\n", env, v)
			}
		}
	}
	return cfg
}

func runFcntlHelper(path string, stdout, stderr io.Writer, cfg helperConfig) int {
	ppid := os.Getppid()
	answer := func(c byte) { _, _ = stdout.Write([]byte{c}) }
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "opening cluster lock file: %v\n", err)
		answer('3')
		return 1
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			answer('1')
			return 0
		}
		fmt.Fprintf(stderr, "locking %s: %v\n", path, err)
		answer('3')
		return 1
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		fmt.Fprintf(stderr, "stat %s: %v\n", path, err)
		answer('3')
		return 1
	}
	answer('0')

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	tick := time.NewTicker(helperPoll)
	defer tick.Stop()
	var (
		checked   chan error // non-nil while a check runs
		checkFrom time.Time  // when it started
		lastCheck = time.Now()
	)
	for {
		select {
		case <-sig:
			return 0
		case err := <-checked:
			checked = nil
			if err != nil {
				fmt.Fprintf(stderr, "cluster lock file %s: %v: releasing\n", path, err)
				return 0
			}
			answer('0') // confirmed
			continue
		case <-tick.C:
		}
		if os.Getppid() != ppid {
			fmt.Fprintln(stderr, "ctdbd is gone: releasing the cluster lock")
			return 0
		}
		if s := procState(ppid); s == 'T' || s == 't' || s == 'Z' || s == 'X' {
			fmt.Fprintf(stderr, "ctdbd is stopped (state %c): releasing the cluster lock\n", s)
			return 0
		}
		now := time.Now()
		if checked != nil && now.Sub(checkFrom) > cfg.checkTimeout {
			fmt.Fprintf(stderr, "checking cluster lock file %s took longer than %v (hung filesystem?): releasing\n", path, cfg.checkTimeout)
			return 1
		}
		if checked == nil && now.Sub(lastCheck) >= cfg.recheck {
			lastCheck, checkFrom = now, now
			checked = make(chan error, 1)
			go func(ch chan<- error) {
				if cfg.checkHook != nil {
					cfg.checkHook()
				}
				ch <- checkFile(path, f, st)
			}(checked)
		}
	}
}

// checkFile is ctdb_mutex_fcntl_helper's check, and a test lock on byte 1
// through the held descriptor (a stat may be answered from the attribute
// cache; a lock request reaches the lock manager).
func checkFile(path string, f *os.File, locked unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Stat(path, &now); err != nil {
		return fmt.Errorf("removed: %w", err)
	}
	if now.Ino != locked.Ino || now.Dev != locked.Dev {
		return errors.New("replaced (inode changed)")
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 1, Len: 1}
	switch err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); {
	case err == nil:
		lk.Type = unix.F_UNLCK
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			return fmt.Errorf("test unlock of byte 1: %w", err)
		}
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
		// Another node's check holds it: the lock manager answered.
	default:
		return fmt.Errorf("test lock on byte 1: %w", err)
	}
	return nil
}

// procState is the state letter of a process from /proc/PID/stat; 0 if
// it cannot be read.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "PID (comm) S ...": comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
