package clusterlock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the other processes a test needs: fcntl locks
// are per process, so contention needs a second one. CLUSTERLOCK_CHILD
// selects the role:
//
//	lock FILE    take the fcntl lock; print "locked" or "contention"; if
//	             locked, hold it until stdin closes
//	helper FILE  a mutex helper in Go, like ctdb_mutex_fcntl_helper: write
//	             '0', '1' or '3' and, holding the lock, wait for SIGTERM
//	holder SPEC  take SPEC with this package, print "held", wait forever
//	selfhelper [--lock-helper] FILE       RunFcntlHelper
//	selfhelper-hang [--lock-helper] FILE  the same; its second check hangs
const childEnv = "CLUSTERLOCK_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		code := m.Run()
		if code == 0 && !noLeaks() {
			code = 1
		}
		os.Exit(code)
	case "lock":
		childLock(os.Args[1])
	case "helper":
		childHelper(os.Args[1])
	case "holder":
		childHolder(os.Args[1])
	case "selfhelper":
		os.Exit(RunFcntlHelper(helperPath(), os.Stdout, os.Stderr))
	case "selfhelper-hang":
		// Its second check hangs, as on a filesystem gone away.
		cfg := helperConfigFromEnv(os.Stderr)
		var n atomic.Int32
		cfg.checkHook = func() {
			if n.Add(1) >= 2 {
				select {}
			}
		}
		os.Exit(runFcntlHelper(helperPath(), os.Stdout, os.Stderr, cfg))
	}
	os.Exit(0)
}

// helperPath is the FILE of "[--lock-helper] FILE".
func helperPath() string {
	if len(os.Args) > 2 && os.Args[1] == HelperFlag {
		return os.Args[2]
	}
	return os.Args[1]
}

// noLeaks waits for the package's goroutines (rechecks, helper readers
// and waiters) to end, and reports any that do not.
func noLeaks() bool {
	deadline := time.Now().Add(waitTimeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "clusterlock.(*") && !strings.Contains(g, "noLeaks") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "%d goroutines leaked:\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rawLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func childLock(path string) {
	f, err := rawLock(path)
	if err != nil {
		fmt.Println("contention")
		return
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	f.Close()
}

func childHelper(path string) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	f, err := rawLock(path)
	switch {
	case err == unix.EAGAIN || err == unix.EACCES:
		os.Stdout.Write([]byte("1"))
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Stdout.Write([]byte("3"))
		return
	}
	os.Stdout.Write([]byte("0"))
	<-term
	f.Close()
}

func childHolder(spec string) {
	l, err := New(spec, Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := l.TryLock(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("held")
	select {}
}

// child runs the test binary in role with arg; its stdout is returned
// line by line, and closing stdin ends a "lock" child.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

func startChild(t *testing.T, role, arg string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], arg)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

func (c *child) line(t *testing.T) string {
	t.Helper()
	if !c.lines.Scan() {
		t.Fatalf("child %v: no output (%v)", c.cmd.Args, c.lines.Err())
	}
	return c.lines.Text()
}

// childTries reports what a child process gets when it tries the lock.
func childTries(t *testing.T, path string) string {
	t.Helper()
	c := startChild(t, "lock", path)
	got := c.line(t)
	c.stdin.Close()
	c.cmd.Wait()
	return got
}

// gone reports whether pid has exited (absent, or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

const waitTimeout = 15 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed waits for ch to close.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// logSink collects log lines; they are printed if the test fails.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func newLogger(t *testing.T) (*slog.Logger, *logSink) {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Logf("logs:\n%s", strings.Join(s.lines, ""))
		}
	})
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})), s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, string(p))
	return len(p), nil
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
