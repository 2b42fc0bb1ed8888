package clusterlock

import (
	"cmp"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script writes an sh mutex helper to a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "helper")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// readPID waits for a helper to write its PID to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "a PID in "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func newHelperLocker(t *testing.T, spec string, timeout time.Duration) (Locker, *logSink) {
	t.Helper()
	logger, logs := newLogger(t)
	l, err := New(spec, Options{Logger: logger, HelperTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

func TestHelperAnswers(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    error  // errors.Is
		wantErr string // substring
		log     string // a line the helper's stderr leaves in our log
	}{
		{name: "contention", body: "printf 1", want: ErrContention},
		{name: "contention, helper stays", body: "printf 1; exec sleep 1000", want: ErrContention},
		{name: "timeout", body: "printf 2", want: ErrTimeout},
		{name: "error", body: "echo 'cannot open /x' >&2; printf 3", wantErr: "failed", log: "cluster lock helper: cannot open /x"},
		{name: "silent exit", body: "exit 0", wantErr: "exited without an answer"},
		{name: "unexpected answer", body: "printf x", wantErr: `unexpected answer 'x'`},
		{name: "no answer in time", body: "exec sleep 1000", want: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, logs := newHelperLocker(t, "!"+script(t, tt.body), 200*time.Millisecond)
			h, err := l.TryLock(context.Background())
			if err == nil {
				h.Release()
				t.Fatalf("TryLock() = nil error, want %v%s", tt.want, tt.wantErr)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("TryLock() = %v, want %v", err, tt.want)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("TryLock() = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.log != "" && !logs.contains(tt.log) {
				t.Errorf("log lacks %q", tt.log)
			}
		})
	}
}

func TestHelperHeldAndReleased(t *testing.T) {
	dir := t.TempDir()
	// The helper and a child of it; Release must end both.
	body := `echo $$ > ` + dir + `/pid
printf 0
sleep 1000 &
echo $! > ` + dir + `/childpid
wait`
	l, _ := newHelperLocker(t, "!"+script(t, body), 0)
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	pid, childPID := readPID(t, dir+"/pid"), readPID(t, dir+"/childpid")
	if gone(pid) || gone(childPID) {
		t.Fatal("helper exited while holding the lock")
	}
	if isClosed(h.Lost()) {
		t.Fatal("Lost closed while the helper runs")
	}
	if err := h.Release(); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	if !gone(pid) {
		t.Errorf("helper %d still running after Release", pid)
	}
	waitFor(t, "the helper's child to end", func() bool { return gone(childPID) })
	if isClosed(h.Lost()) {
		t.Error("Release closed Lost")
	}
	if err := h.Release(); err != nil {
		t.Errorf("second Release() = %v", err)
	}
}

func TestHelperLost(t *testing.T) {
	tests := []struct{ name, body string }{
		{"exits", "printf 0; sleep 0.05"},
		{"closes stdout", "printf 0; exec >&-; exec sleep 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, logs := newHelperLocker(t, "!"+script(t, tt.body), 0)
			h, err := l.TryLock(context.Background())
			if err != nil {
				t.Fatalf("TryLock() = %v", err)
			}
			waitClosed(t, "Lost", h.Lost())
			if err := h.Release(); err != nil {
				t.Errorf("Release() after Lost = %v", err)
			}
			if !logs.contains("helper terminated") {
				t.Error(`no "helper terminated" in the log`)
			}
			hh := h.(*helperHeld)
			if !gone(hh.cmd.Process.Pid) {
				t.Errorf("helper %d still running after Lost and Release", hh.cmd.Process.Pid)
			}
		})
	}
}

func TestHelperArgs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "args")
	helper := script(t, `for a; do echo "$a"; done > `+out+`; printf 1`)
	l, _ := newHelperLocker(t, "!"+helper+" a\tb  c", 0)
	if _, err := l.TryLock(context.Background()); !errors.Is(err, ErrContention) {
		t.Fatalf("TryLock() = %v, want ErrContention", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "a\nb\nc\n" {
		t.Errorf("helper args = %q, want a, b, c", got)
	}
}

func TestHelperCancel(t *testing.T) {
	dir := t.TempDir()
	l, _ := newHelperLocker(t, "!"+script(t, "echo $$ > "+dir+"/pid; exec sleep 1000"), 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.TryLock(ctx)
		errc <- err
	}()
	pid := readPID(t, dir+"/pid")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("TryLock() = %v, want Canceled", err)
	}
	if !gone(pid) {
		t.Errorf("helper %d still running after TryLock gave up", pid)
	}
}

func TestHelperIgnoresSIGTERM(t *testing.T) {
	defer func(g time.Duration) { killGrace = g }(killGrace)
	killGrace = 100 * time.Millisecond
	dir := t.TempDir()
	l, logs := newHelperLocker(t, "!"+script(t, "trap '' TERM; echo $$ > "+dir+"/pid; printf 0; while :; do sleep 0.01; done"), 0)
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	pid := readPID(t, dir+"/pid")
	h.Release() // SIGTERM, then SIGKILL after killGrace
	if !gone(pid) {
		t.Errorf("helper %d still running after Release", pid)
	}
	if !logs.contains("ignored SIGTERM") {
		t.Error(`no "ignored SIGTERM" in the log`)
	}
}

// If ctdbd dies, its helper gets SIGTERM (Pdeathsig) and lets go.
func TestHelperParentDies(t *testing.T) {
	dir := t.TempDir()
	helper := script(t, "echo $$ > "+dir+"/pid; printf 0; exec sleep 1000")
	c := startChild(t, "holder", "!"+helper)
	if got := c.line(t); got != "held" {
		t.Fatalf("holder: %q, want held", got)
	}
	pid := readPID(t, dir+"/pid")
	if gone(pid) {
		t.Fatal("helper not running while held")
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
	waitFor(t, "the orphaned helper to end", func() bool { return gone(pid) })
}

// Two lockers with a real fcntl helper each (the test binary as helper,
// see TestMain): the second sees contention until the first releases.
func TestHelperFcntlEndToEnd(t *testing.T) {
	t.Setenv(childEnv, "helper") // inherited by the helpers
	testTwoHelpers(t, "!"+os.Args[0]+" "+filepath.Join(t.TempDir(), "lock"))
}

// The same with CTDB's own helper, where Debian's ctdb package is installed
// (or $CTDB_MUTEX_FCNTL_HELPER names one).
func TestHelperCTDBFcntl(t *testing.T) {
	helper := cmp.Or(os.Getenv("CTDB_MUTEX_FCNTL_HELPER"), "/usr/libexec/ctdb/ctdb_mutex_fcntl_helper")
	if _, err := os.Stat(helper); err != nil {
		t.Skipf("%s not installed (Debian package ctdb); TestHelperFcntlEndToEnd covers the protocol", helper)
	}
	lock := filepath.Join(t.TempDir(), "lock")
	testTwoHelpers(t, "!"+helper+" "+lock)

	// Its recheck (here every second) notices a removed lock file and
	// exits: the lock is lost.
	l, _ := newHelperLocker(t, "!"+helper+" "+lock+" 1", 0)
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	defer h.Release()
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "Lost after the lock file was removed", h.Lost())
}

func testTwoHelpers(t *testing.T, spec string) {
	ctx := context.Background()
	a, _ := newHelperLocker(t, spec, 0)
	b, _ := newHelperLocker(t, spec, 0)
	ha, err := a.TryLock(ctx)
	if err != nil {
		t.Fatalf("first TryLock() = %v", err)
	}
	if hb, err := b.TryLock(ctx); !errors.Is(err, ErrContention) {
		if err == nil {
			hb.Release()
		}
		t.Fatalf("second TryLock() = %v, want ErrContention", err)
	}
	if err := ha.Release(); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	hb, err := b.TryLock(ctx)
	if err != nil {
		t.Fatalf("second TryLock() after Release = %v", err)
	}
	if _, err := a.TryLock(ctx); !errors.Is(err, ErrContention) {
		t.Errorf("first TryLock() while the second holds = %v, want ErrContention", err)
	}
	hb.Release()
}
