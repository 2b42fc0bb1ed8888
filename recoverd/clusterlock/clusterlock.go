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
// A Locker only tries: TryLock never waits for a holder to let go.
package clusterlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

var (
	// ErrContention is returned by TryLock when someone else holds the lock.
	ErrContention = errors.New("clusterlock: lock held elsewhere")
	// ErrTimeout is returned by TryLock when a mutex helper reports a
	// timeout ('2') or says nothing for Options.HelperTimeout.
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
	// vanished or was replaced, or the mutex helper exited. Release does
	// not close it.
	Lost() <-chan struct{}
	// Release lets the lock go and waits until it is gone. It may be
	// called more than once, also after Lost.
	Release() error
}

// Options configures New.
type Options struct {
	PNN    int          // this node, for logs
	Logger *slog.Logger // nil means slog.Default()
	// HelperTimeout bounds the wait for a mutex helper's answer; 0 means
	// 120 s, CTDB's (the helper's own timeouts should be shorter).
	HelperTimeout time.Duration
	// RecheckInterval is how often a held fcntl lock checks that its file
	// is still the one it locked; 0 means 5 s, as ctdb_mutex_fcntl_helper.
	RecheckInterval time.Duration
	// CheckTimeout, if set, declares an fcntl lock lost when one check
	// (stat, and a test lock on byte 1) takes longer, as a hung cluster
	// filesystem would; 0 means wait, as ctdb_mutex_fcntl_helper's default.
	CheckTimeout time.Duration
}

const (
	defaultHelperTimeout   = 120 * time.Second
	defaultRecheckInterval = 5 * time.Second
)

// New returns the Locker for spec, the value of `[cluster] cluster lock`.
// An empty spec is "no lock": New returns None{}, whose TryLock always
// succeeds, so that leader election need not special-case it.
func New(spec string, opts Options) (Locker, error) {
	if opts.HelperTimeout < 0 || opts.RecheckInterval < 0 || opts.CheckTimeout < 0 {
		return nil, errors.New("clusterlock: negative timeout")
	}
	if opts.HelperTimeout == 0 {
		opts.HelperTimeout = defaultHelperTimeout
	}
	if opts.RecheckInterval == 0 {
		opts.RecheckInterval = defaultRecheckInterval
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
		return &helperLocker{spec: spec, argv: argv, timeout: opts.HelperTimeout, log: log}, nil
	case strings.HasPrefix(spec, "etcd://"):
		return nil, fmt.Errorf("cluster lock %q: etcd cluster lock not supported yet", spec)
	case strings.HasPrefix(spec, "/"):
		return &fileLocker{path: spec, recheck: opts.RecheckInterval, checkTimeout: opts.CheckTimeout, log: log}, nil
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
