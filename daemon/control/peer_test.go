package control

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// callEnv makes the test binary a one-shot client: it calls the socket
// named by the variable and prints what happened.
const callEnv = "CONTROL_TEST_CALL"

func TestMain(m *testing.M) {
	if path := os.Getenv(callEnv); path != "" {
		resp, err := Call(context.Background(), path, Request{Command: CmdStatus})
		if err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("response:", resp.Error)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOtherUser runs a real client as another user (nobody) against a
// daemon running as root: the 0600 socket keeps it out, and if the mode is
// loosened, SO_PEERCRED still does. It needs root to switch users; as
// non-root, TestPermissionDenied covers the check through its seam.
func TestOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user; TestPermissionDenied covers the check")
	}
	noLeak(t)
	var called atomic.Bool
	_, path := serve(t, HandlerFunc(func(context.Context, Request) Response {
		called.Store(true)
		return Response{}
	}))
	dir := filepath.Dir(path)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary, where nobody may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client.test")
	copyFile(t, self, bin)

	asNobody := func() string {
		cmd := exec.Command(bin)
		cmd.Env = []string{callEnv + "=" + path}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as nobody: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}

	want := "error: permission denied connecting to " + path + ": the control socket is root-only; run ctdb as root"
	if got := asNobody(); got != want {
		t.Errorf("nobody on the 0600 socket: %q, want %q", got, want)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	want = "response: " + ErrPermission
	if got := asNobody(); got != want {
		t.Errorf("nobody on a 0666 socket: %q, want %q", got, want)
	}
	if called.Load() {
		t.Error("the handler ran for nobody")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
