package clusterlock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNew(t *testing.T) {
	tests := []struct {
		spec    string
		want    Locker // compared with unexported fields, minus the logger
		wantErr string
	}{
		{spec: "", want: None{}},
		{spec: "  ", want: None{}},
		{spec: "/shared/ctdb/.lock", want: &fileLocker{path: "/shared/ctdb/.lock", timeout: 10 * time.Second,
			recheck: 5 * time.Second, checkTimeout: 10 * time.Second}},
		{spec: "!/usr/libexec/ctdb/ctdb_mutex_fcntl_helper /shared/lock",
			want: &helperLocker{spec: "!/usr/libexec/ctdb/ctdb_mutex_fcntl_helper /shared/lock",
				argv: []string{"/usr/libexec/ctdb/ctdb_mutex_fcntl_helper", "/shared/lock"}, timeout: 10 * time.Second,
				recheck: 5 * time.Second, checkTimeout: 10 * time.Second}},
		{spec: "!/bin/helper  a\tb \t c", want: &helperLocker{spec: "!/bin/helper  a\tb \t c",
			argv: []string{"/bin/helper", "a", "b", "c"}, timeout: 10 * time.Second,
			recheck: 5 * time.Second, checkTimeout: 10 * time.Second}},
		{spec: "!/usr/sbin/ctdbd --lock-helper /shared/lock", want: &helperLocker{spec: "!/usr/sbin/ctdbd --lock-helper /shared/lock",
			argv: []string{"/usr/sbin/ctdbd", "--lock-helper", "/shared/lock"}, timeout: 10 * time.Second,
			self: true, recheck: 5 * time.Second, checkTimeout: 10 * time.Second}},
		{spec: "etcd://10.0.0.1:2379/ctdb", wantErr: "etcd cluster lock not supported yet"},
		{spec: "!", wantErr: "no helper command"},
		{spec: "! \t", wantErr: "no helper command"},
		{spec: "!helper arg", wantErr: "not an absolute path"},
		{spec: "relative/path", wantErr: "want /path/to/file"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := New(tt.spec, Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) = %v, %v; want error containing %q", tt.spec, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) = %v", tt.spec, err)
			}
			switch l := got.(type) {
			case *fileLocker:
				l.log = nil
			case *helperLocker:
				l.log = nil
			}
			opts := []cmp.Option{cmp.AllowUnexported(fileLocker{}, helperLocker{}),
				cmpopts.IgnoreFields(fileLocker{}, "open", "hung", "checkHook")}
			if diff := cmp.Diff(tt.want, got, opts...); diff != "" {
				t.Errorf("New(%q) (-want +got):\n%s", tt.spec, diff)
			}
		})
	}
	if l, _ := New("!/bin/h", Options{HelperTimeout: time.Minute}); l.(*helperLocker).timeout != time.Minute {
		t.Error("HelperTimeout not used as LockTimeout")
	}
	if _, err := New("/x", Options{HelperTimeout: -1}); err == nil {
		t.Error("New with a negative timeout = nil error, want one")
	}
}

func TestString(t *testing.T) {
	for spec, want := range map[string]string{"": "none", "/a/b": "/a/b", "!/bin/h x": "!/bin/h x"} {
		l, err := New(spec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := l.String(); got != want {
			t.Errorf("New(%q).String() = %q, want %q", spec, got, want)
		}
	}
}

func TestNone(t *testing.T) {
	h, err := None{}.TryLock(context.Background())
	if err != nil {
		t.Fatalf("None.TryLock() = %v", err)
	}
	if isClosed(h.Lost()) {
		t.Error("None's lock is lost")
	}
	if err := h.Release(); err != nil {
		t.Errorf("Release() = %v", err)
	}
	if err := h.Release(); err != nil {
		t.Errorf("second Release() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (None{}).TryLock(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("None.TryLock(cancelled) = %v, want Canceled", err)
	}
}
