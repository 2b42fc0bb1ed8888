package eventscript

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// runScript runs one script to its end, or kills its process group when
// ctx ends first; either way, it then kills every process the script
// started (see reaper).
//
// How the kill is made safe: the script is its own process-group leader
// (Setpgid), and its exit is noticed with waitid(WNOWAIT), which leaves it
// a zombie. While the zombie is not reaped its PID, and so the group ID,
// cannot be reused, so signalling -pgid never hits a stranger, even after
// the script itself has died and only its children are left. The zombie
// is reaped (cmd.Wait) only after the group got its last signal.
//
// The output pipe is ours (os.Pipe), not os/exec's, so Wait returns when
// the script exits even if a child it left keeps the pipe open; we read on
// until outputLinger after the exit and then close our end.
func (r *Runner) runScript(ctx context.Context, s script, event string, args []string, log *slog.Logger) ScriptResult {
	sr := ScriptResult{Name: s.name, Start: time.Now()}
	if ctx.Err() != nil {
		// The deadline passed (or the event was cancelled) between
		// scripts: this one would have been the one running.
		r.endedByContext(ctx, &sr)
		sr.Err = "event " + sr.Err + " before the script started"
		return sr
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		sr.State, sr.ExitCode, sr.Err = ScriptCannotRun, errnoOf(err, syscall.EIO), fmt.Sprintf("creating output pipe: %v", err)
		return sr
	}
	rn := r.reap.begin()
	cmd := exec.Command(s.path, append([]string{event}, args...)...)
	// The run's mark comes last, so it wins over one inherited from a
	// ctdbd started by an event script (tests do that).
	cmd.Env = append(append(slices.Clip(r.env), envFrom(ctx)...), RunIDEnv+"="+rn.id)
	cmd.Stdout, cmd.Stderr = pw, pw // one pipe: lines stay in order
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	placeErr, err := r.reap.start(rn, cmd)
	pw.Close()
	if placeErr != nil {
		log.Warn("event script not confined to its cgroup; its processes are found by their environment", "err", placeErr)
	}
	if err != nil {
		pr.Close()
		r.reap.end(rn) // returns the cgroup to the pool; nothing ran
		sr.Duration = time.Since(sr.Start)
		sr.State, sr.ExitCode, sr.Err = ScriptCannotRun, errnoOf(err, syscall.ENOEXEC), strerror(err)
		log.Warn("event script cannot run", "err", err)
		return sr
	}
	pid := cmd.Process.Pid
	rn.leader = pid
	log.Debug("event script started", "pid", pid)

	out := &tailBuffer{max: r.outputCap}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		io.Copy(out, pr) // ends at EOF, or at the read deadline set below
	}()
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExited(pid)
	}()

	var ended error // non-nil when ctx ended the script
	select {
	case <-exited:
	case <-ctx.Done():
		ended = ctx.Err()
		if errors.Is(ended, context.DeadlineExceeded) {
			log.Warn("event script timed out", "pid", pid)
			if r.debugScript != "" {
				r.runDebug(pid, event, log)
			}
			kill(pid, syscall.SIGTERM)
			timer := time.NewTimer(r.killGrace)
			select {
			case <-exited:
			case <-timer.C:
			}
			timer.Stop()
		}
		kill(pid, syscall.SIGKILL)
		<-exited
	}
	// The leader is a zombie now; its group ID is still ours. Kill what
	// it left behind: its group, then everything it started, wherever it
	// went (setsid, double fork).
	kill(pid, syscall.SIGKILL)
	if n, err := r.reap.end(rn); err != nil {
		log.Error("processes the event script left behind survive", "killed", n, "err", err)
	} else if n > 0 {
		log.Warn("killed processes the event script left behind", "killed", n)
	}
	err = cmd.Wait() // reaps the zombie
	sr.Duration = time.Since(sr.Start)

	if err := pr.SetReadDeadline(time.Now().Add(outputLinger)); err != nil {
		// Not expected for os.Pipe on Linux; the read then ends at EOF.
		log.Warn("cannot bound reading script output", "err", err)
	}
	<-readDone
	pr.Close()
	sr.Output, sr.Truncated = out.String()

	if ended != nil {
		r.endedByContext(ctx, &sr)
		return sr
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		sr.State = ScriptOK
	case errors.As(err, &ee):
		sr.State = ScriptError
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			sr.ExitCode = 128 + int(ws.Signal())
			sr.Err = fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		} else {
			sr.ExitCode = ws.ExitStatus()
		}
		log.Warn("event script failed", "code", sr.ExitCode, "err", sr.Err, "output", lastLines(sr.Output, 5))
	default:
		sr.State, sr.ExitCode, sr.Err = ScriptError, errnoOf(err, syscall.EIO), err.Error()
		log.Warn("event script failed", "err", err)
	}
	return sr
}

// endedByContext marks sr as timed out or cancelled, from ctx.
func (r *Runner) endedByContext(ctx context.Context, sr *ScriptResult) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		sr.State, sr.ExitCode, sr.Err = ScriptTimedOut, codeTimedOut, "timed out"
		return
	}
	sr.State, sr.Err = ScriptCancelled, cancelReason(ctx)
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return // exited, or not our child any more (ECHILD): nothing to wait for
		}
	}
}

type envKey struct{}

// WithEnv returns a context under which Run gives the scripts of that
// event these variables ("KEY=value") too, after (so over) the Runner's
// own: what one run needs, such as releaseip's CTDB_TCP_CONNECTIONS.
func WithEnv(ctx context.Context, env ...string) context.Context {
	return context.WithValue(ctx, envKey{}, append(envFrom(ctx), env...))
}

func envFrom(ctx context.Context) []string {
	env, _ := ctx.Value(envKey{}).([]string)
	return slices.Clip(env)
}

// kill signals process group pgid; ESRCH (nobody left) is fine.
func kill(pgid int, sig syscall.Signal) {
	syscall.Kill(-pgid, sig)
}

// runDebug runs the debug script on a hung script, bounded by
// debugScriptTimeout and killed with its own process group after that.
func (r *Runner) runDebug(pid int, event string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), debugScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.debugScript, strconv.Itoa(pid), event)
	cmd.Env = r.env
	out := &tailBuffer{max: r.outputCap}
	cmd.Stdout, cmd.Stderr = out, out // same writer: one pipe
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		kill(cmd.Process.Pid, syscall.SIGKILL)
		return nil
	}
	cmd.WaitDelay = time.Second // backstop if something escaped the group
	err := cmd.Run()
	text, _ := out.String()
	for line := range strings.Lines(text) {
		log.Warn("event_debug: "+strings.TrimRight(line, "\n"), "pid", pid)
	}
	if err != nil {
		log.Warn("debug script failed", "debug_script", r.debugScript, "err", err)
	}
}

// errnoOf returns the errno inside err, or def.
func errnoOf(err error, def syscall.Errno) int {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return int(errno)
	}
	return int(def)
}

// strerror gives the C library's message for err's errno ("Exec format
// error"); Go's texts are the same words in lower case.
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	msg := errno.Error()
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// lastLines returns at most n trailing lines of s, for log lines.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	i := len(s)
	for range n {
		j := strings.LastIndexByte(s[:i], '\n')
		if j < 0 {
			return s
		}
		i = j
	}
	return s[i+1:]
}

// tailBuffer keeps the last max bytes written to it. It grows to twice max
// before it moves the tail down, so writes are amortised O(len).
type tailBuffer struct {
	max     int
	buf     []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.dropped = t.dropped || len(t.buf) > 0 || len(p) > t.max
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if len(t.buf)+len(p) > 2*t.max {
		keep := t.max - len(p) // bytes of the old tail that stay
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
		t.dropped = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept tail and whether anything was dropped. A
// character cut in two at the start is dropped too.
func (t *tailBuffer) String() (string, bool) {
	b := t.buf
	dropped := t.dropped
	if len(b) > t.max {
		b, dropped = b[len(b)-t.max:], true
	}
	if dropped {
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return string(b), dropped
}
