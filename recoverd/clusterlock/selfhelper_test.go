package clusterlock

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"

	"syscall"
	"testing"
)

func TestSelfHelperSpec(t *testing.T) {
	tests := []struct{ spec, exe, want string }{
		{"/shared/reclock", "/usr/sbin/ctdbd", "!/usr/sbin/ctdbd --lock-helper /shared/reclock"},
		{"!/usr/lib/helper x", "/usr/sbin/ctdbd", "!/usr/lib/helper x"},
		{"/path with space", "/usr/sbin/ctdbd", "/path with space"},
		{"", "/usr/sbin/ctdbd", ""},
	}
	for _, tt := range tests {
		if got := SelfHelperSpec(tt.spec, tt.exe); got != tt.want {
			t.Errorf("SelfHelperSpec(%q, %q) = %q, want %q", tt.spec, tt.exe, got, tt.want)
		}
	}
}

// TestSelfHelperReleasesWhenParentStops runs the helper under a shell
// parent, stops the parent as SIGSTOP stops a hung ctdbd, and checks that
// the lock becomes free.
func TestSelfHelperReleasesWhenParentStops(t *testing.T) {
	file := filepath.Join(t.TempDir(), "reclock")
	out := filepath.Join(t.TempDir(), "out")
	// sh is the helper's parent; the helper's answer goes to a file.
	cmd := exec.Command("sh", "-c", `"$0" "$1" > "$2"; sleep 1000`, os.Args[0], file, out)
	cmd.Env = append(os.Environ(), childEnv+"=selfhelper")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	waitFor(t, "helper answers 0", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "0"
	})
	l, err := New(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if h, err := l.TryLock(ctx); err != ErrContention {
		if err == nil {
			h.Release()
		}
		t.Fatalf("TryLock while the helper holds it = %v, want ErrContention", err)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var h Held
	waitFor(t, "lock free after the parent stopped", func() bool {
		h, err = l.TryLock(ctx)
		return err == nil
	})
	h.Release()
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
}
