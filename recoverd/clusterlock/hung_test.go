package clusterlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A lock file whose open hangs, as on a cluster filesystem gone away:
// TryLock returns after LockTimeout (or at ctx's deadline), later tries
// fail at once while the first is stuck, and once the filesystem answers
// the late lock is let go and the lock can be taken.
func TestFileLockHung(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	logger, _ := newLogger(t)
	const bound = 200 * time.Millisecond
	l, err := New(path, Options{Logger: logger, LockTimeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	fl := l.(*fileLocker)
	release := make(chan struct{})
	realOpen := fl.open
	fl.open = func(p string) (*os.File, error) {
		<-release
		return realOpen(p)
	}

	start := time.Now()
	_, err = l.TryLock(context.Background())
	if took := time.Since(start); !errors.Is(err, ErrTimeout) || took > bound+time.Second {
		t.Errorf("TryLock() = %v after %v, want ErrTimeout after about %v", err, took, bound)
	}
	start = time.Now()
	if _, err := l.TryLock(context.Background()); !errors.Is(err, ErrTimeout) || time.Since(start) > bound/2 {
		t.Errorf("TryLock() while the first is stuck = %v after %v, want ErrTimeout at once", err, time.Since(start))
	}

	close(release) // the filesystem answers
	waitFor(t, "the stuck attempt to end", func() bool { return !fl.hung.Load() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := l.TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock() after the filesystem answered = %v", err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("Release() = %v", err)
	}
}

// ctx's deadline wins over a later LockTimeout.
func TestFileLockHungDeadline(t *testing.T) {
	logger, _ := newLogger(t)
	l, err := New(filepath.Join(t.TempDir(), "lock"), Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	l.(*fileLocker).open = func(string) (*os.File, error) {
		<-release
		return nil, errors.New("gone")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := l.TryLock(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("TryLock() = %v after %v, want DeadlineExceeded after 100ms", err, time.Since(start))
	}
}

// A held lock whose check hangs is lost after CheckTimeout, and Release
// does not wait for the hung check.
func TestFileCheckHung(t *testing.T) {
	logger, logs := newLogger(t)
	l, err := New(filepath.Join(t.TempDir(), "lock"), Options{Logger: logger,
		RecheckInterval: 10 * time.Millisecond, CheckTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var hang atomic.Bool
	unblock := make(chan struct{})
	defer close(unblock)
	l.(*fileLocker).checkHook = func() {
		if hang.Load() {
			<-unblock
		}
	}
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	fh := h.(*fileHeld)
	waitFor(t, "3 passed rechecks", func() bool { return fh.checks.Load() >= 3 })
	hang.Store(true)
	start := time.Now()
	waitClosed(t, "Lost", h.Lost())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Lost after %v, want about RecheckInterval + CheckTimeout", took)
	}
	if !logs.contains("check took longer") {
		t.Error(`no "check took longer" in the log`)
	}
	start = time.Now()
	if err := h.Release(); err != nil || time.Since(start) > time.Second {
		t.Errorf("Release() = %v after %v", err, time.Since(start))
	}
}

// A helper that never answers: TryLock returns at the bound, from
// LockTimeout or ctx, and the helper is killed.
func TestHelperNeverAnswers(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // LockTimeout
		ctx     time.Duration // ctx deadline, 0 for none
		want    error
	}{
		{"LockTimeout", 300 * time.Millisecond, 0, ErrTimeout},
		{"ctx deadline", time.Minute, 300 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// It ignores SIGTERM, as a helper stuck in a system call would.
			l, _ := newHelperLocker(t, "!"+script(t, "trap '' TERM; echo $$ > "+dir+"/pid; while :; do sleep 0.01; done"), 0)
			l.(*helperLocker).timeout = tt.timeout
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			start := time.Now()
			_, err := l.TryLock(ctx)
			took := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Errorf("TryLock() = %v, want %v", err, tt.want)
			}
			if took > 300*time.Millisecond+time.Second {
				t.Errorf("TryLock() took %v, want about 300ms", took)
			}
			if pid := readPID(t, dir+"/pid"); !gone(pid) {
				t.Errorf("helper %d still running after TryLock gave up", pid)
			}
		})
	}
}

// selfHelperSpec is ctdbd's own helper, played by the test binary in
// role, on a fresh lock file.
func selfHelperSpec(t *testing.T, role string) string {
	t.Setenv(childEnv, role) // inherited by the helper
	return SelfHelperSpec(filepath.Join(t.TempDir(), "lock"), os.Args[0])
}

func newSelfHelperLocker(t *testing.T, role string) (Locker, *logSink) {
	t.Helper()
	logger, logs := newLogger(t)
	l, err := New(selfHelperSpec(t, role), Options{Logger: logger,
		RecheckInterval: 50 * time.Millisecond, CheckTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !l.(*helperLocker).self {
		t.Fatal("ctdbd's own helper not recognised")
	}
	return l, logs
}

// ctdbd's own helper reports its checks; a lock whose reports stop (the
// helper frozen, or hung in the kernel) is lost, and the helper killed.
func TestSelfHelperReports(t *testing.T) {
	l, logs := newSelfHelperLocker(t, "selfhelper")
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	defer h.Release()
	// Without reports Lost would fire after 350ms.
	select {
	case <-h.Lost():
		t.Fatal("Lost while the helper reports its checks")
	case <-time.After(time.Second):
	}
	pid := h.(*helperHeld).cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitClosed(t, "Lost after the helper stopped reporting", h.Lost())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Lost after %v, want about RecheckInterval + CheckTimeout", took)
	}
	if !logs.contains("reported no check") {
		t.Error(`no "reported no check" in the log`)
	}
	waitFor(t, "the helper "+strconv.Itoa(pid)+" to be killed", func() bool { return gone(pid) })
}

// The helper gives the lock up itself when its check hangs.
func TestSelfHelperCheckHangs(t *testing.T) {
	l, logs := newSelfHelperLocker(t, "selfhelper-hang")
	h, err := l.TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	defer h.Release()
	waitClosed(t, "Lost after the helper's check hung", h.Lost())
	waitFor(t, "the helper to say why", func() bool { return logs.contains("took longer than 300ms") })
}
