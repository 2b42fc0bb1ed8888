package clusterlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newFileLocker(t *testing.T, path string) Locker {
	t.Helper()
	logger, _ := newLogger(t)
	l, err := New(path, Options{Logger: logger, RecheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFileContention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l := newFileLocker(t, path)
	ctx := context.Background()

	// Another process holds it.
	c := startChild(t, "lock", path)
	if got := c.line(t); got != "locked" {
		t.Fatalf("child: %q, want locked", got)
	}
	if h, err := l.TryLock(ctx); !errors.Is(err, ErrContention) {
		t.Fatalf("TryLock() while a child holds the lock = %v, %v; want ErrContention", h, err)
	}
	c.stdin.Close()
	c.cmd.Wait()

	// It let go: we take it, and now the child cannot.
	h, err := l.TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock() after the child let go = %v", err)
	}
	if got := childTries(t, path); got != "contention" {
		t.Errorf("child while we hold the lock: %q, want contention", got)
	}
	if err := h.Release(); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("second Release() = %v", err)
	}
	if isClosed(h.Lost()) {
		t.Error("Release closed Lost")
	}
	if got := childTries(t, path); got != "locked" {
		t.Errorf("child after Release: %q, want locked", got)
	}
	// And we can take it again.
	h, err = l.TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock() after Release = %v", err)
	}
	h.Release()
}

// In one process a second fcntl lock would succeed, and closing its file
// would drop the first: a second Locker must see contention instead, and
// leave the first holder's lock alone.
func TestFileSameProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lock")
	link := filepath.Join(dir, "link")
	h, err := newFileLocker(t, path).TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock() = %v", err)
	}
	defer h.Release()
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, link} {
		if _, err := newFileLocker(t, p).TryLock(context.Background()); !errors.Is(err, ErrContention) {
			t.Errorf("second TryLock(%s) in the same process = %v, want ErrContention", p, err)
		}
	}
	if got := childTries(t, path); got != "contention" {
		t.Errorf("child after the in-process attempts: %q, want contention (the lock was dropped)", got)
	}
}

func TestFileLost(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, path string)
	}{
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced", func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lock")
			l := newFileLocker(t, path)
			h, err := l.TryLock(context.Background())
			if err != nil {
				t.Fatalf("TryLock() = %v", err)
			}
			fh := h.(*fileHeld)
			waitFor(t, "3 passed rechecks", func() bool { return fh.checks.Load() >= 3 })
			if isClosed(h.Lost()) {
				t.Fatal("Lost closed while the file is unchanged")
			}
			tt.break_(t, path)
			waitClosed(t, "Lost", h.Lost())
			if err := h.Release(); err != nil {
				t.Errorf("Release() after Lost = %v", err)
			}
			// The lock is gone with the old file: a new one can be taken.
			h, err = l.TryLock(context.Background())
			if err != nil {
				t.Fatalf("TryLock() after losing the lock = %v", err)
			}
			h.Release()
		})
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newFileLocker(t, filepath.Join(dir, "lock")).TryLock(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("TryLock(cancelled) = %v, want Canceled", err)
	}
	_, err := newFileLocker(t, filepath.Join(dir, "missing", "lock")).TryLock(context.Background())
	if err == nil || errors.Is(err, ErrContention) {
		t.Errorf("TryLock(in a missing directory) = %v, want an error other than contention", err)
	}
}
