package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// socketDir is a short temporary directory: a unix socket path must fit
// in 108 bytes, which t.TempDir's long names can exceed.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// noLeak fails the test if a server goroutine outlives it. Register it
// first so that it runs after the other cleanups.
func noLeak(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "daemon/control.(*Server)") {
				t.Errorf("leaked server goroutine:\n%s", g)
			}
		}
	})
}

// serve starts a Server with h on a fresh socket and stops it at cleanup.
func serve(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	path := filepath.Join(socketDir(t), SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen(%s): %v", path, err)
	}
	s, err := NewServer(ServerConfig{Listener: l, Handler: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return s, path
}

func call(t *testing.T, path string, req Request) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := Call(ctx, path, req)
	if err != nil {
		t.Fatalf("Call(%v): %v", req, err)
	}
	return resp
}

func TestCallRoundTrip(t *testing.T) {
	noLeak(t)
	var got atomic.Pointer[Request]
	var hadDeadline atomic.Bool
	_, path := serve(t, HandlerFunc(func(ctx context.Context, req Request) Response {
		got.Store(&req)
		_, ok := ctx.Deadline()
		hadDeadline.Store(ok)
		switch req.Command {
		case CmdPNN:
			return Reply(PNN{PNN: 2})
		case CmdDisable:
			return Response{Notice: "Node 2 is already disabled"}
		default:
			return Failf(0, "unknown command %s", req.Command)
		}
	}))

	tests := []struct {
		name string
		req  Request
		want Response
	}{
		{"data", Request{Command: CmdPNN, Target: ThisNode},
			Response{Data: json.RawMessage(`{"pnn":2}`)}},
		{"notice", Request{Command: CmdDisable, Target: 2},
			Response{Notice: "Node 2 is already disabled"}},
		{"error", Request{Command: "frobnicate", Args: []string{"a", "b"}, Target: ThisNode},
			Response{ExitCode: 1, Error: "unknown command frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, path, tt.req)
			if diff := cmp.Diff(tt.want, resp); diff != "" {
				t.Errorf("Call(%v) mismatch (-want +got):\n%s", tt.req, diff)
			}
			r := got.Load()
			if r.Command != tt.req.Command || r.Target != tt.req.Target || !cmp.Equal(r.Args, tt.req.Args) {
				t.Errorf("handler got %+v, want %+v", *r, tt.req)
			}
			// Call passes its deadline on, and the handler's ctx has one.
			if r.Timeout <= 0 || r.Timeout > 10*time.Second {
				t.Errorf("handler got Timeout %v, want in (0, 10s]", r.Timeout)
			}
			if !hadDeadline.Load() {
				t.Error("handler context has no deadline")
			}
		})
	}
}

func TestListen(t *testing.T) {
	noLeak(t)
	t.Run("creates run dir 0755 and socket 0600", func(t *testing.T) {
		dir := filepath.Join(socketDir(t), "run")
		path := filepath.Join(dir, SocketName)
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer l.Close()
		for _, c := range []struct {
			path string
			want fs.FileMode
		}{{dir, 0o755}, {path, 0o600}} {
			fi, err := os.Stat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != c.want {
				t.Errorf("mode of %s = %v, want %v", c.path, got, c.want)
			}
		}
	})

	t.Run("removes a stale socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), SocketName)
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close() // a daemon that died: the file stays, nobody listens
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("stale socket not left behind: %v", err)
		}
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		l.Close()
	})

	t.Run("refuses when a daemon answers", func(t *testing.T) {
		_, path := serve(t, HandlerFunc(func(context.Context, Request) Response { return Response{} }))
		_, err := Listen(path)
		want := "another ctdbd is running: " + path
		if err == nil || err.Error() != want {
			t.Fatalf("Listen(%s) = %v, want %q", path, err, want)
		}
		// The running daemon still answers.
		call(t, path, Request{Command: CmdPNN})
	})

	t.Run("refuses a file that is not a socket", func(t *testing.T) {
		path := filepath.Join(socketDir(t), SocketName)
		if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Listen(regular file) = %v, want a 'not a socket' error", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Errorf("Listen changed the file: %q", b)
		}
	})
}

func TestCallDialErrors(t *testing.T) {
	dir := socketDir(t)
	stale := filepath.Join(dir, "stale.socket")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()

	tests := []struct {
		name, path string
		errno      syscall.Errno
	}{
		{"no socket", filepath.Join(dir, "missing.socket"), syscall.ENOENT},
		{"nobody listening", stale, syscall.ECONNREFUSED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Call(context.Background(), tt.path, Request{Command: CmdStatus})
			want := "cannot connect to ctdbd at " + tt.path + ": is ctdbd running?"
			if err == nil || err.Error() != want {
				t.Fatalf("Call = %v, want %q", err, want)
			}
			var de *DialError
			if !errors.As(err, &de) || !errors.Is(err, tt.errno) {
				t.Errorf("Call error %#v is not a *DialError wrapping %v", err, tt.errno)
			}
		})
	}
}

func TestDialErrorMessages(t *testing.T) {
	const p = "/run/ctdb/ctdbd.socket"
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		err  error
		want string
	}{
		{wrap(syscall.ENOENT), "cannot connect to ctdbd at " + p + ": is ctdbd running?"},
		{wrap(syscall.ECONNREFUSED), "cannot connect to ctdbd at " + p + ": is ctdbd running?"},
		{wrap(syscall.EACCES), "permission denied connecting to " + p + ": the control socket is root-only; run ctdb as root"},
		{wrap(syscall.ENOTSOCK), "connecting to ctdbd at " + p + ": dial unix: connect: socket operation on non-socket"},
	}
	for _, tt := range tests {
		if got := (&DialError{Path: p, Err: tt.err}).Error(); got != tt.want {
			t.Errorf("DialError{%v}.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	noLeak(t)
	var called atomic.Bool
	s, path := serve(t, HandlerFunc(func(context.Context, Request) Response {
		called.Store(true)
		return Response{}
	}))
	var asked atomic.Uint32
	asked.Store(1<<32 - 1)
	s.allow = func(uid uint32) bool { asked.Store(uid); return false }

	resp := call(t, path, Request{Command: CmdShutdown})
	want := Response{ExitCode: 1, Error: "permission denied: the control socket is root-only"}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("Call by a non-root peer (-want +got):\n%s", diff)
	}
	if called.Load() {
		t.Error("handler ran for a refused peer")
	}
	if got, me := asked.Load(), uint32(os.Getuid()); got != me {
		t.Errorf("peer uid checked = %d, want ours (%d)", got, me)
	}
}

func TestDefaultAllow(t *testing.T) {
	s, err := NewServer(ServerConfig{Listener: nopListener{}, Handler: HandlerFunc(nil)})
	if err != nil {
		t.Fatal(err)
	}
	me := uint32(os.Getuid())
	for _, c := range []struct {
		uid  uint32
		want bool
	}{{0, true}, {me, true}, {me + 4242, false}} {
		if got := s.allow(c.uid); got != c.want {
			t.Errorf("allow(%d) = %v, want %v", c.uid, got, c.want)
		}
	}
}

type nopListener struct{ net.Listener }

func (nopListener) Close() error { return nil }

func TestNewServerChecks(t *testing.T) {
	if _, err := NewServer(ServerConfig{Handler: HandlerFunc(nil)}); err == nil {
		t.Error("NewServer without Listener: nil error")
	}
	if _, err := NewServer(ServerConfig{Listener: nopListener{}}); err == nil {
		t.Error("NewServer without Handler: nil error")
	}
}

func TestHandlerTimeout(t *testing.T) {
	noLeak(t)
	_, path := serve(t, HandlerFunc(func(ctx context.Context, req Request) Response {
		<-ctx.Done()
		return Failf(110, "%s: %v", req.Command, ctx.Err())
	}))
	// The request's Timeout bounds the handler, whatever the client's own
	// deadline.
	resp := call(t, path, Request{Command: CmdIPReallocate, Timeout: 20 * time.Millisecond})
	want := Response{ExitCode: 110, Error: "ipreallocate: context deadline exceeded"}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCallDeadline(t *testing.T) {
	noLeak(t)
	release := make(chan struct{})
	_, path := serve(t, HandlerFunc(func(ctx context.Context, req Request) Response {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Response{}
	}))
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := Call(ctx, path, Request{Command: CmdStatus, Timeout: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call past its deadline = %v, want context.DeadlineExceeded", err)
	}
}

func TestHandlerPanic(t *testing.T) {
	noLeak(t)
	_, path := serve(t, HandlerFunc(func(context.Context, Request) Response { panic("boom") }))
	resp := call(t, path, Request{Command: CmdStatus})
	want := Response{ExitCode: 1, Error: "internal error in ctdbd handling status: boom"}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The server survives.
	call(t, path, Request{Command: CmdStatus})
}

func TestBadRequests(t *testing.T) {
	noLeak(t)
	_, path := serve(t, HandlerFunc(func(context.Context, Request) Response { return Reply(PNN{PNN: 0}) }))
	tests := []struct {
		name string
		send string
	}{
		{"not json", "status please\n"},
		{"wrong type", `{"command": 7}` + "\n"},
		{"too big", `{"command":"status","args":["` + strings.Repeat("x", MaxRequest) + `"]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go io.WriteString(c, tt.send) // may fail once the server gives up reading
			var resp Response
			if err := json.NewDecoder(c).Decode(&resp); err != nil {
				t.Fatalf("reading response: %v", err)
			}
			if resp.ExitCode != 1 || !strings.HasPrefix(resp.Error, "bad control request: ") {
				t.Errorf("response = %+v, want exit 1 and a bad control request error", resp)
			}
		})
	}
}

func TestCloseWaitsAndIsIdempotent(t *testing.T) {
	noLeak(t)
	path := filepath.Join(socketDir(t), SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var sawCancel atomic.Bool
	s, err := NewServer(ServerConfig{Listener: l, Logger: slog.New(slog.DiscardHandler),
		Handler: HandlerFunc(func(ctx context.Context, req Request) Response {
			close(started)
			<-ctx.Done()
			sawCancel.Store(errors.Is(ctx.Err(), context.Canceled))
			return Failf(1, "stopping")
		})})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()

	got := make(chan Response, 1)
	go func() {
		resp, _ := Call(context.Background(), path, Request{Command: CmdStatus})
		got <- resp
	}()
	<-started
	s.Close()
	// Close returned: the handler has finished, so its answer was sent.
	if !sawCancel.Load() {
		t.Error("handler context was not cancelled by Close")
	}
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	if resp := <-got; resp.Error != "stopping" {
		t.Errorf("in-flight call got %+v, want the handler's answer", resp)
	}
	s.Close() // again: no panic, no hang
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run after Close = %v, want nil", err)
	}
	if _, err := Call(context.Background(), path, Request{Command: CmdStatus}); err == nil {
		t.Error("Call after Close succeeded")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	noLeak(t)
	path := filepath.Join(socketDir(t), SocketName)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Listener: l, Logger: slog.New(slog.DiscardHandler),
		Handler: HandlerFunc(func(context.Context, Request) Response { return Response{} })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	call(t, path, Request{Command: CmdPNN})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("second Run after stop = %v, want nil", err)
	}
	s.Close()
	// The socket file goes with the listener.
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		data any
		want Response
	}{
		{nil, Response{}},
		{Leader{PNN: -1}, Response{Data: json.RawMessage(`{"pnn":-1}`)}},
		{func() {}, Response{ExitCode: 1, Error: "encoding answer: json: unsupported type: func()"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Reply(tt.data)); diff != "" {
			t.Errorf("Reply(%v) (-want +got):\n%s", fmt.Sprintf("%T", tt.data), diff)
		}
	}
}
