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
type helperLocker struct {
	spec    string
	argv    []string
	timeout time.Duration
	log     *slog.Logger
}

// killGrace is how long a helper has to exit after SIGTERM before SIGKILL
// (a variable for tests).
var killGrace = 5 * time.Second

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
		h.kill()
		return nil, fmt.Errorf("cluster lock helper %s: no answer after %v: %w", l.argv[0], l.timeout, ErrTimeout)
	case <-ctx.Done():
		h.kill()
		return nil, fmt.Errorf("cluster lock helper %s: %w", l.argv[0], ctx.Err())
	}
	if first.err == nil && first.b == '0' {
		go h.watch()
		l.log.Info("cluster lock taken", "lock", l.spec, "helper_pid", h.cmd.Process.Pid)
		return h, nil
	}
	h.kill()
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
		_, _ = io.Copy(io.Discard, h.stdout)
		return
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

// watch closes lost when the helper closes stdout or exits, unless the
// helper is being released.
func (h *helperHeld) watch() {
	select {
	case <-h.stop:
		return
	case <-h.eof:
	case <-h.exited:
	}
	select {
	case <-h.stop:
		return
	default:
	}
	h.l.log.Warn("cluster lock lost: helper terminated", "lock", h.l.spec)
	close(h.lost)
	h.kill() // its children, if any; and reap
}

func (h *helperHeld) Lost() <-chan struct{} { return h.lost }

// Release sends the helper's process group SIGTERM and waits for it.
func (h *helperHeld) Release() error {
	select {
	case <-h.lost:
		h.kill()
		return nil
	default:
	}
	h.kill()
	h.l.log.Info("cluster lock released", "lock", h.l.spec)
	return nil
}

// kill ends the helper's process group: SIGTERM, SIGKILL after killGrace,
// and waits until the helper is reaped and its pipes are drained. It may
// be called more than once.
func (h *helperHeld) kill() {
	h.once.Do(func() {
		close(h.stop)
		pgid := h.cmd.Process.Pid
		// The group outlives its leader while members remain, and Linux
		// does not reuse a PID that names a live process group, so
		// signalling it after the leader exited is safe.
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(killGrace):
			h.l.log.Warn("cluster lock helper ignored SIGTERM; killing it", "lock", h.l.spec, "helper_pid", pgid)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-h.exited
		// A child that left the group could keep the pipes open: stop
		// reading after a moment rather than wait for it.
		drained := make(chan struct{})
		go func() { h.wg.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(time.Second):
			h.stdout.Close()
			h.stderr.Close()
			<-drained
		}
		h.stdout.Close()
		h.stderr.Close()
	})
}
