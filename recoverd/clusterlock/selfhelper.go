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

// helperPoll is how often the helper checks its parent and the file.
const helperPoll = 100 * time.Millisecond

// RunFcntlHelper is the lock helper's main: it takes an fcntl write lock on
// byte 0 of path and answers with CTDB's protocol on stdout ('0' taken,
// '1' contention, '3' error), then holds the lock until SIGTERM, until its
// parent exits or is stopped, or until path no longer names the locked
// file. It returns the exit code.
func RunFcntlHelper(path string, stdout, stderr io.Writer) int {
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
	lastCheck := time.Now()
	for {
		select {
		case <-sig:
			return 0
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
		if time.Since(lastCheck) >= 5*time.Second {
			lastCheck = time.Now()
			var now unix.Stat_t
			if err := unix.Stat(path, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
				fmt.Fprintf(stderr, "cluster lock file %s was removed or replaced: releasing\n", path)
				return 0
			}
		}
	}
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
