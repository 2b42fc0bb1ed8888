package bed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// CmdTimeout bounds every command the bed runs and waits for (ip, ctdb).
const CmdTimeout = 30 * time.Second

// TermTimeout is how long Terminate waits after SIGTERM before SIGKILL.
const TermTimeout = 30 * time.Second

// spawner starts every child from one goroutine locked to its OS thread
// for the life of the process. Pdeathsig is sent when the *thread* that
// forked the child exits, not the process; Go may end a thread whenever a
// goroutine exits while locked to it (the namespace helpers do), so the
// forking thread must be one that never ends.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func start(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: see spawner
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Die with the harness; own process group so a terminal's Ctrl-C
	// reaches only the harness.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// Output is what a finished command printed and its exit code.
type Output struct {
	Stdout string
	Stderr string
	Code   int // exit code; -1 when killed by a signal
}

// String is stdout and stderr for a log line.
func (o Output) String() string {
	s := strings.TrimRight(o.Stdout, "\n")
	if e := strings.TrimRight(o.Stderr, "\n"); e != "" {
		if s != "" {
			s += "\n"
		}
		s += "stderr: " + e
	}
	return fmt.Sprintf("[exit %d] %s", o.Code, s)
}

// run runs argv to completion (at most CmdTimeout) with stdin. The error
// is for failing to run or a timeout; a non-zero exit is only Output.Code.
func run(argv []string, stdin string) (Output, error) {
	return runContext(context.Background(), argv, stdin, nil)
}

func runContext(ctx context.Context, argv []string, stdin string, env []string) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, CmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = time.Second
	if err := start(cmd); err != nil {
		return Output{}, fmt.Errorf("running %s: %w", argv[0], err)
	}
	err := cmd.Wait()
	out := Output{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return out, fmt.Errorf("running %s: %w", strings.Join(argv, " "), ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return out, fmt.Errorf("running %s: %w", argv[0], err)
	}
	return out, nil
}

// Exec runs argv inside namespace ns (`ip netns exec ns argv…`) and waits
// for it (at most CmdTimeout).
func (b *Bed) Exec(ns string, argv ...string) (Output, error) {
	return b.ExecContext(context.Background(), ns, argv...)
}

// ExecContext is Exec with a context.
func (b *Bed) ExecContext(ctx context.Context, ns string, argv ...string) (Output, error) {
	full := append([]string{"ip", "netns", "exec", ns}, argv...)
	out, err := runContext(ctx, full, "", nil)
	b.logf("%s: %s", strings.Join(full, " "), out)
	return out, err
}

// Proc is a long-running process the bed started; Close kills it.
type Proc struct {
	Name string // for messages, e.g. "node 1 ctdbd"
	PID  int
	Log  string // where its stdout and stderr go

	cmd      *exec.Cmd
	intended atomic.Bool   // the bed was asked to end it (Kill, Terminate)
	done     chan struct{} // closed once it has exited and been reaped
	err      error         // Wait's result, set before done closes
}

// Spawn starts argv inside namespace ns in the background, stdout and
// stderr appended to logPath. The bed kills it at Close.
func (b *Bed) Spawn(ns, name, logPath string, argv ...string) (*Proc, error) {
	return b.spawn(ns, name, logPath, nil, argv)
}

func (b *Bed) spawn(ns, name, logPath string, env []string, argv []string) (*Proc, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	defer f.Close() // the child has its own copy
	full := append([]string{"ip", "netns", "exec", ns}, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	fmt.Fprintf(f, "=== %s: bed starts: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(full, " "))
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, Log: logPath, cmd: cmd, done: make(chan struct{})}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.logf("started %s: pid %d: %s", name, p.PID, strings.Join(full, " "))
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process unless it has already exited. It goes
// by the process's pidfd, so a reused PID is never signalled.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d) with %v: %w", p.Name, p.PID, sig, err)
	}
	return nil
}

// Wait waits for the process to exit and returns how it exited.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s (pid %d) to exit: %w", p.Name, p.PID, ctx.Err())
	}
}

// kill SIGKILLs the process if it still runs and waits for it.
func (p *Proc) kill() error {
	p.intended.Store(true)
	if exited, _ := p.Exited(); exited {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s (pid %d): %w", p.Name, p.PID, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(CmdTimeout):
		return fmt.Errorf("killing %s (pid %d): still running %v after SIGKILL", p.Name, p.PID, CmdTimeout)
	}
}
