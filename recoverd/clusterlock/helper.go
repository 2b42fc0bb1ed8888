package clusterlock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// helperLocker runs a mutex helper with CTDB's protocol
// (ctdb/doc/cluster_mutex_helper.txt): the helper writes one ASCII byte to
// its stdout, a pipe: '0' the lock is taken (it keeps running, holding
// it), '1' contention, '2' timeout, '3' error; nothing before the pipe
// closes counts as '3'. Later bytes are ignored (the etcd helper writes
// '0' on every refresh). EOF or the helper's exit after '0' means the lock
// is lost. Release is SIGTERM. The helper's exit status is ignored, its
// stderr goes to our log.
//
// The helper runs in a process group of its own, which SIGTERM (and
// SIGKILL after killGrace) goes to, so a shell script's children go too;
// and with Pdeathsig SIGTERM, so the lock is let go if ctdbd dies. (Linux
// sends Pdeathsig when the thread that forked exits; Go's threads only
// exit with the process, unless a goroutine locked to its thread exits.)
//
// A helper that hangs (on a hung cluster filesystem) cannot hang ctdbd:
// TryLock gives up after LockTimeout and SIGKILLs it; Release waits at
// most killGrace + reapWait for it to die. ctdbd's own helper
// (SelfHelperSpec) also writes a byte after every passed check, every
// RecheckInterval; when none comes for RecheckInterval + CheckTimeout +
// reportSlack the lock counts as lost and the helper is killed.
type helperLocker struct {
	spec    string
	argv    []string
	timeout time.Duration // Options.LockTimeout
	log     *slog.Logger

	// self is true for ctdbd's own helper, which reports its checks.
	self         bool
	recheck      time.Duration
	checkTimeout time.Duration
}

// killGrace is how long a helper has to exit after SIGTERM before SIGKILL
// (a variable for tests).
var killGrace = 5 * time.Second

// reapWait bounds the wait for a SIGKILLed helper to be gone: one stuck
// in the kernel (D state, a hung filesystem) dies only when its system
// call returns, and ctdbd does not wait for that.
const reapWait = 2 * time.Second

// reportSlack is how much later than ctdbd's own helper should have given
// up by itself its missing reports declare the lock lost.
const reportSlack = time.Second

// Environment of ctdbd's own helper: its check interval and timeout, as
// Go durations.
const (
	helperRecheckEnv      = "CTDB_LOCK_HELPER_RECHECK"
	helperCheckTimeoutEnv = "CTDB_LOCK_HELPER_CHECK_TIMEOUT"
)

func (l *helperLocker) String() string { return l.spec }

// TryLock starts the helper and waits for its first byte, for at most
// HelperTimeout or until ctx ends.
func (l *helperLocker) TryLock(ctx context.Context) (Held, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := l.start()
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	var first firstByte
	select {
	case first = <-h.first:
	case <-timer.C:
		h.kill(0)
		return nil, fmt.Errorf("cluster lock helper %s: no answer after %v: %w", l.argv[0], l.timeout, ErrTimeout)
	case <-ctx.Done():
		h.kill(0)
		return nil, fmt.Errorf("cluster lock helper %s: %w", l.argv[0], ctx.Err())
	}
	if first.err == nil && first.b == '0' {
		go h.watch()
		l.log.Info("cluster lock taken", "lock", l.spec, "helper_pid", h.cmd.Process.Pid)
		return h, nil
	}
	h.kill(killGrace)
	switch {
	case first.err != nil:
		return nil, fmt.Errorf("cluster lock helper %s: exited without an answer", l.argv[0])
	case first.b == '1':
		return nil, ErrContention
	case first.b == '2':
		return nil, fmt.Errorf("cluster lock helper %s: %w", l.argv[0], ErrTimeout)
	case first.b == '3':
		return nil, fmt.Errorf("cluster lock helper %s: failed (see its messages above)", l.argv[0])
	}
	return nil, fmt.Errorf("cluster lock helper %s: unexpected answer %q", l.argv[0], first.b)
}

type firstByte struct {
	b   byte
	err error // EOF or a read error before any byte
}

// helperHeld is a running helper.
type helperHeld struct {
	l      *helperLocker
	cmd    *exec.Cmd
	stdout *os.File
	stderr *os.File

	first  chan firstByte // cap 1
	beat   chan struct{}  // cap 1: a byte after the first came
	eof    chan struct{}  // closed when stdout reaches EOF
	exited chan struct{}  // closed once the helper has been reaped
	lost   chan struct{}  // closed by watch when the helper goes away unasked
	stop   chan struct{}  // closed by kill (Release)
	wg     sync.WaitGroup // the reader goroutines
	once   sync.Once
}

func (l *helperLocker) start() (*helperHeld, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting cluster lock helper: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("starting cluster lock helper: %w", err)
	}
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	cmd.Stdout = outW // *os.File: the child gets the pipe itself, no copier
	cmd.Stderr = errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if l.self {
		cmd.Env = append(os.Environ(),
			helperRecheckEnv+"="+l.recheck.String(), helperCheckTimeoutEnv+"="+l.checkTimeout.String())
	}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting cluster lock helper: %w", err)
	}
	h := &helperHeld{
		l: l, cmd: cmd, stdout: outR, stderr: errR,
		first:  make(chan firstByte, 1),
		beat:   make(chan struct{}, 1),
		eof:    make(chan struct{}),
		exited: make(chan struct{}),
		lost:   make(chan struct{}),
		stop:   make(chan struct{}),
	}
	h.wg.Add(2)
	go h.readStdout()
	go h.logStderr()
	go func() {
		cmd.Wait() // exit status ignored, as CTDB does
		close(h.exited)
	}()
	return h, nil
}

// readStdout delivers the first byte and drains the rest until EOF.
func (h *helperHeld) readStdout() {
	defer h.wg.Done()
	defer close(h.eof)
	var b [1]byte
	n, err := io.ReadFull(h.stdout, b[:])
	if n == 1 {
		h.first <- firstByte{b: b[0]}
		var buf [64]byte
		for {
			if _, err := h.stdout.Read(buf[:]); err != nil {
				return
			}
			select {
			case h.beat <- struct{}{}:
			default:
			}
		}
	}
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	h.first <- firstByte{err: err}
}

// logStderr logs the helper's stderr, a line at a time.
func (h *helperHeld) logStderr() {
	defer h.wg.Done()
	s := bufio.NewScanner(h.stderr)
	for s.Scan() {
		h.l.log.Warn("cluster lock helper: "+s.Text(), "lock", h.l.spec, "helper_pid", h.cmd.Process.Pid)
	}
}

// watch closes lost when the helper closes stdout or exits, or (ctdbd's
// own helper) reports no check for RecheckInterval + CheckTimeout, unless
// the helper is being released.
func (h *helperHeld) watch() {
	var missed <-chan time.Time // nil: no reports expected
	var t *time.Timer
	// The helper itself gives up after recheck + checkTimeout (and says
	// why); a second more, and it counts as hung.
	limit := h.l.recheck + h.l.checkTimeout + reportSlack
	if h.l.self {
		t = time.NewTimer(limit)
		defer t.Stop()
		missed = t.C
	}
	reason := "helper terminated"
loop:
	for {
		select {
		case <-h.stop:
			return
		case <-h.eof:
			break loop
		case <-h.exited:
			break loop
		case <-h.beat:
			if t != nil {
				t.Reset(limit)
			}
		case <-missed:
			reason = fmt.Sprintf("helper reported no check for %v (hung filesystem?)", limit)
			break loop
		}
	}
	select {
	case <-h.stop:
		return
	default:
	}
	h.l.log.Warn("cluster lock lost: "+reason, "lock", h.l.spec)
	close(h.lost)
	h.kill(0) // its children, if any; and reap
}

func (h *helperHeld) Lost() <-chan struct{} { return h.lost }

// Release sends the helper's process group SIGTERM and waits for it.
func (h *helperHeld) Release() error {
	select {
	case <-h.lost:
		h.kill(0)
		return nil
	default:
	}
	if !h.kill(killGrace) {
		return fmt.Errorf("releasing cluster lock: helper %d does not die", h.cmd.Process.Pid)
	}
	h.l.log.Info("cluster lock released", "lock", h.l.spec)
	return nil
}

// kill ends the helper's process group: SIGTERM, SIGKILL after grace (at
// once if 0), and waits until the helper is reaped and its pipes are
// drained, for at most reapWait after the SIGKILL. It reports whether the
// helper is gone. It may be called more than once; later calls wait for
// nothing.
func (h *helperHeld) kill(grace time.Duration) bool {
	gone := true
	h.once.Do(func() {
		close(h.stop)
		pgid := h.cmd.Process.Pid
		// The group outlives its leader while members remain, and Linux
		// does not reuse a PID that names a live process group, so
		// signalling it after the leader exited is safe.
		if grace > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			timer := time.NewTimer(grace)
			select {
			case <-h.exited:
			case <-timer.C:
				h.l.log.Warn("cluster lock helper ignored SIGTERM; killing it", "lock", h.l.spec, "helper_pid", pgid)
			}
			timer.Stop()
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		timer := time.NewTimer(reapWait)
		select {
		case <-h.exited:
		case <-timer.C:
			// Stuck in the kernel; the reaper goroutine stays until it
			// dies. Stop reading its pipes.
			gone = false
			h.l.log.Error("cluster lock helper does not die after SIGKILL (stuck in the kernel?)", "lock", h.l.spec, "helper_pid", pgid)
		}
		timer.Stop()
		// A child that left the group could keep the pipes open: stop
		// reading after a moment rather than wait for it.
		drained := make(chan struct{})
		go func() { h.wg.Wait(); close(drained) }()
		wait := time.Second
		if !gone {
			wait = 0
		}
		timer = time.NewTimer(wait)
		select {
		case <-drained:
		case <-timer.C:
			h.stdout.Close()
			h.stderr.Close()
			<-drained
		}
		timer.Stop()
		h.stdout.Close()
		h.stderr.Close()
	})
	return gone
}
