package clusterlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileLocker is an fcntl write lock on byte 0 of a file, as
// ctdb_mutex_fcntl_helper takes it, but held by this process.
//
// fcntl (POSIX record) locks belong to a process, not to a file
// descriptor: the process gets a lock it already holds again, and closing
// any descriptor of the file drops all of the process's locks on it. So
// this package keeps one descriptor per locked file (by device and inode)
// for the whole process, answers ErrContention to a second TryLock in the
// process, and never opens and closes a locked file to check it: the
// recheck uses stat(2) on the path, and its test lock on byte 1 goes
// through the held descriptor. (ctdb_mutex_fcntl_helper forks a child for
// its checks for the same reason.)
//
// On a hung cluster filesystem open, fcntl, stat and close may not return.
// They run on goroutines of their own that TryLock, the recheck and
// Release stop waiting for after their bounds; such a goroutine stays
// blocked until the filesystem answers (it cannot be killed), so a
// locker starts no second attempt while one is still blocked.
type fileLocker struct {
	path         string
	timeout      time.Duration // Options.LockTimeout
	recheck      time.Duration
	checkTimeout time.Duration
	log          *slog.Logger
	// open opens (creating) the lock file: a seam, tests make it hang.
	open func(path string) (*os.File, error)
	// hung is set while an attempt that TryLock gave up on still runs.
	hung atomic.Bool
	// checkHook, if set, runs at the start of every recheck (tests).
	checkHook func()
}

func (l *fileLocker) String() string { return l.path }

// fileKey identifies a file across paths.
type fileKey struct{ dev, ino uint64 }

func keyOf(fi os.FileInfo) (fileKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino}, true
}

// held is every fcntl lock this process holds, by file.
var held = struct {
	mu    sync.Mutex
	files map[fileKey]*fileHeld
}{files: make(map[fileKey]*fileHeld)}

// TryLock opens (creating it if need be) and locks the file. Open and
// lock run on a goroutine of their own: on a hung cluster filesystem they
// may never return, and TryLock then returns when ctx ends or after
// LockTimeout (a lock taken after that is released at once).
func (l *fileLocker) TryLock(ctx context.Context) (Held, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.hung.Load() {
		return nil, fmt.Errorf("locking %s: an earlier attempt has not returned (hung filesystem?): %w", l.path, ErrTimeout)
	}
	type result struct {
		h   *fileHeld
		err error
	}
	ch := make(chan result, 1)
	go func() {
		h, err := l.lock()
		ch <- result{h, err}
	}()
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	abandon := func() {
		l.hung.Store(true)
		go func() {
			if r := <-ch; r.h != nil {
				r.h.unlock()
			}
			l.hung.Store(false)
		}()
	}
	select {
	case <-timer.C:
		abandon()
		return nil, fmt.Errorf("locking %s: no answer after %v: %w", l.path, l.timeout, ErrTimeout)
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		r.h.start()
		l.log.Info("cluster lock taken", "lock", l.path)
		return r.h, nil
	case <-ctx.Done():
		abandon()
		return nil, fmt.Errorf("locking %s: %w", l.path, ctx.Err())
	}
}

func (l *fileLocker) lock() (*fileHeld, error) {
	held.mu.Lock()
	defer held.mu.Unlock()
	if fi, err := os.Stat(l.path); err == nil {
		if k, ok := keyOf(fi); ok && held.files[k] != nil {
			return nil, ErrContention // by this process, maybe through another path
		}
	}
	f, err := l.open(l.path)
	if err != nil {
		return nil, fmt.Errorf("opening cluster lock file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening cluster lock file: %w", err)
	}
	key, ok := keyOf(fi)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("opening cluster lock file %s: no inode", l.path)
	}
	if h := held.files[key]; h != nil {
		// The path was renamed onto a file we hold since the Stat above.
		// Closing f would drop that lock: keep it open with the holder's.
		h.extra = append(h.extra, f)
		return nil, ErrContention
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := fcntlLock(f, unix.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, ErrContention
		}
		return nil, fmt.Errorf("locking %s: %w", l.path, err)
	}
	h := &fileHeld{l: l, f: f, key: key, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	held.files[key] = h
	return h, nil
}

// fileHeld is a held fcntl lock and its recheck loop.
type fileHeld struct {
	l    *fileLocker
	f    *os.File
	key  fileKey
	lost chan struct{} // closed by the recheck loop when the lock is lost
	stop chan struct{} // closed by Release
	done chan struct{} // closed when the recheck loop has ended
	once sync.Once

	// checks counts passed rechecks, for tests.
	checks atomic.Int64
	// extra and unlocked are guarded by held.mu.
	extra    []*os.File
	unlocked bool
}

func (h *fileHeld) Lost() <-chan struct{} { return h.lost }

func (h *fileHeld) start() { go h.watch() }

// Release stops the recheck and closes the file, which drops the lock.
// Closing may hang on a hung filesystem: Release then returns an error
// after LockTimeout, and the close completes (and the lock goes) when the
// filesystem answers.
func (h *fileHeld) Release() error {
	var err error
	h.once.Do(func() {
		close(h.stop)
		<-h.done // the recheck waits for nothing once stop is closed
		unlocked := make(chan struct{})
		go func() {
			h.unlock()
			close(unlocked)
		}()
		timer := time.NewTimer(h.l.timeout)
		defer timer.Stop()
		select {
		case <-unlocked:
			h.l.log.Info("cluster lock released", "lock", h.l.path)
		case <-timer.C:
			err = fmt.Errorf("releasing cluster lock %s: close did not return within %v", h.l.path, h.l.timeout)
		}
	})
	return err
}

// unlock closes every descriptor of the file, dropping the lock, and
// forgets it. It may be called more than once.
func (h *fileHeld) unlock() {
	held.mu.Lock()
	defer held.mu.Unlock()
	if h.unlocked {
		return
	}
	h.unlocked = true
	if held.files[h.key] == h {
		delete(held.files, h.key)
	}
	h.f.Close()
	for _, f := range h.extra {
		f.Close()
	}
}

// watch rechecks the lock every RecheckInterval until Release, or until a
// check fails: then the lock counts as lost.
func (h *fileHeld) watch() {
	defer close(h.done)
	t := time.NewTicker(h.l.recheck)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if err := h.checkWithTimeout(); err != nil {
			h.l.log.Warn("cluster lock lost", "lock", h.l.path, "err", err)
			close(h.lost)
			// Closing may hang as the check did: not on this goroutine,
			// which Release waits for.
			go h.unlock()
			return
		}
		h.checks.Add(1)
	}
}

func (h *fileHeld) checkWithTimeout() error {
	ch := make(chan error, 1)
	go func() {
		if h.l.checkHook != nil {
			h.l.checkHook()
		}
		ch <- h.check()
	}()
	t := time.NewTimer(h.l.checkTimeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		return fmt.Errorf("check took longer than %v (hung filesystem?): %w", h.l.checkTimeout, ErrTimeout)
	case <-h.stop:
		return nil
	}
}

// check is ctdb_mutex_fcntl_helper's: the path still names the file we
// locked, and a blocking test lock on byte 1 works (on a cluster
// filesystem that talks to the lock manager).
func (h *fileHeld) check() error {
	fi, err := os.Stat(h.l.path)
	if err != nil {
		return fmt.Errorf("lock file: %w", err)
	}
	if k, ok := keyOf(fi); !ok || k != h.key {
		return errors.New("lock file replaced (inode changed)")
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 1, Len: 1}
	if err := fcntlLock(h.f, unix.F_SETLKW, &lk); err != nil {
		return fmt.Errorf("test lock on byte 1: %w", err)
	}
	lk.Type = unix.F_UNLCK
	if err := fcntlLock(h.f, unix.F_SETLK, &lk); err != nil {
		return fmt.Errorf("test unlock of byte 1: %w", err)
	}
	return nil
}

// fcntlLock runs fcntl(cmd) on f's descriptor while holding a reference
// to it, so that a concurrent Close cannot hand the number to another file
// under us (a check abandoned by CheckTimeout may still be running).
func fcntlLock(f *os.File, cmd int, lk *unix.Flock_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.FcntlFlock(fd, cmd, lk) }); err != nil {
		return err
	}
	return ferr
}
