// Package clusterlock takes the cluster lock, the lock whose holder may be
// leader ("recovery master"), configured as CTDB configures
// `[cluster] cluster lock`:
//
//	/shared/path/file   an fcntl lock on byte 0 of a file on a shared
//	                    (cluster) filesystem, held by this process
//	!CMD ARGS           CTDB's mutex-helper protocol, so CTDB's own helpers
//	                    (ctdb_mutex_fcntl_helper, the etcd and Ceph ones) work
//	etcd://HOST:PORT/KEY  not supported yet
//	(empty)             no lock: New returns None, which always succeeds
//
// A Locker only tries: TryLock never waits for a holder to let go, and it
// returns within Options.LockTimeout even when the cluster filesystem or
// the helper hangs. A held lock is checked every RecheckInterval; one
// that cannot be confirmed within CheckTimeout counts as lost.
package clusterlock

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

var (
	// ErrContention is returned by TryLock when someone else holds the lock.
	ErrContention = errors.New("clusterlock: lock held elsewhere")
	// ErrTimeout is returned by TryLock when a mutex helper reports a
	// timeout ('2'), or when the lock was not taken within
	// Options.LockTimeout (a hung cluster filesystem, a helper that does
	// not answer).
	ErrTimeout = errors.New("clusterlock: timed out")
)

// Locker takes the cluster lock.
type Locker interface {
	// TryLock takes the lock if it is free: ErrContention when someone else
	// holds it, another error when it could not tell.
	TryLock(ctx context.Context) (Held, error)
	// String is the lock as configured, for logs and `ctdb` output.
	String() string
}

// Held is a lock this node holds.
type Held interface {
	// Lost is closed when the lock is lost without Release: the lock file
	// vanished or was replaced, a check of it did not finish within
	// Options.CheckTimeout (a hung cluster filesystem: the lock cannot be
	// confirmed, so it counts as lost), or the mutex helper exited or, for
	// ctdbd's own helper, stopped reporting. Release does not close it.
	Lost() <-chan struct{}
	// Release lets the lock go and waits until it is gone, at most about
	// Options.LockTimeout (then it returns an error: the lock goes when
	// the filesystem answers or the helper dies). It may be called more
	// than once, also after Lost.
	Release() error
}

// Options configures New.
type Options struct {
	PNN    int          // this node, for logs
	Logger *slog.Logger // nil means slog.Default()
	// LockTimeout bounds every TryLock: it returns by ctx's deadline or
	// after LockTimeout, whichever is first, with ErrTimeout if the lock
	// was neither taken nor refused by then (a mutex helper that has not
	// answered is killed). It also bounds Release. 0 means 10 s.
	LockTimeout time.Duration
	// HelperTimeout is the old name of LockTimeout, used when LockTimeout
	// is 0.
	//
	// Deprecated: use LockTimeout.
	HelperTimeout time.Duration
	// RecheckInterval is how often a held lock is checked: an fcntl lock
	// held in process checks that its path still names the file it locked
	// and that the lock manager answers (a test lock on byte 1); ctdbd's
	// own helper (SelfHelperSpec) does the same and reports each passed
	// check on its stdout. 0 means 5 s, as ctdb_mutex_fcntl_helper.
	RecheckInterval time.Duration
	// CheckTimeout declares the lock lost when one check takes longer, as
	// on a hung cluster filesystem (ctdbd's own helper then exits; if it
	// cannot, its missing reports count after a further second). A leader
	// thus learns within about RecheckInterval + CheckTimeout (15 s by
	// default) that it can no longer confirm its lock. 0 means 10 s. Other mutex helpers check
	// on their own (ctdb_mutex_fcntl_helper: its third argument).
	CheckTimeout time.Duration
}

const (
	defaultLockTimeout     = 10 * time.Second
	defaultRecheckInterval = 5 * time.Second
	defaultCheckTimeout    = 10 * time.Second
)

// New returns the Locker for spec, the value of `[cluster] cluster lock`.
// An empty spec is "no lock": New returns None{}, whose TryLock always
// succeeds, so that leader election need not special-case it.
func New(spec string, opts Options) (Locker, error) {
	if opts.LockTimeout < 0 || opts.HelperTimeout < 0 || opts.RecheckInterval < 0 || opts.CheckTimeout < 0 {
		return nil, errors.New("clusterlock: negative timeout")
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = cmp.Or(opts.HelperTimeout, defaultLockTimeout)
	}
	if opts.RecheckInterval == 0 {
		opts.RecheckInterval = defaultRecheckInterval
	}
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = defaultCheckTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "clusterlock", "pnn", opts.PNN)
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return None{}, nil
	case strings.HasPrefix(spec, "!"):
		// CTDB splits on spaces and tabs, with no quoting.
		argv := strings.FieldsFunc(spec[1:], func(r rune) bool { return r == ' ' || r == '\t' })
		if len(argv) == 0 {
			return nil, fmt.Errorf("cluster lock %q: no helper command", spec)
		}
		if !strings.HasPrefix(argv[0], "/") {
			return nil, fmt.Errorf("cluster lock %q: helper %s is not an absolute path", spec, argv[0])
		}
		return &helperLocker{
			spec: spec, argv: argv, timeout: opts.LockTimeout, log: log,
			self:    len(argv) == 3 && argv[1] == HelperFlag,
			recheck: opts.RecheckInterval, checkTimeout: opts.CheckTimeout,
		}, nil
	case strings.HasPrefix(spec, "etcd://"):
		return nil, fmt.Errorf("cluster lock %q: etcd cluster lock not supported yet", spec)
	case strings.HasPrefix(spec, "/"):
		return &fileLocker{
			path: spec, timeout: opts.LockTimeout, recheck: opts.RecheckInterval, checkTimeout: opts.CheckTimeout, log: log,
			open: func(path string) (*os.File, error) { return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) },
		}, nil
	}
	return nil, fmt.Errorf("cluster lock %q: want /path/to/file, !/helper args or etcd://host:port/key", spec)
}

// None is the Locker when no cluster lock is configured: TryLock always
// succeeds and the lock is never lost. A caller that needs to know (CTDB
// elects by vote when there is no lock) can test for it with a type switch.
type None struct{}

func (None) TryLock(ctx context.Context) (Held, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return noneHeld{}, nil
}

func (None) String() string { return "none" }

type noneHeld struct{}

func (noneHeld) Lost() <-chan struct{} { return nil } // never closed
func (noneHeld) Release() error        { return nil }
