package eventscript

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/state"
)

// TestMain fails the package when a test leaves one of this package's
// goroutines running (a reader or waiter of a script that was not ended).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "daemon/eventscript.") && !strings.Contains(g, "eventscript.leakedGoroutines") &&
				!strings.Contains(g, "eventscript.TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bed is a config dir with an events dir for one test.
type bed struct {
	t      *testing.T
	base   string // CTDB_BASE
	dir    string // events.d
	work   string // scratch for the scripts (LOG, pid files)
	logBuf *syncBuffer
}

func newBed(t *testing.T) *bed {
	t.Helper()
	base := t.TempDir()
	b := &bed{t: t, base: base, dir: filepath.Join(base, "events.d"), work: t.TempDir(), logBuf: &syncBuffer{}}
	if err := os.Mkdir(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// script writes an events.d file; body is the whole file.
func (b *bed) script(name string, mode os.FileMode, body string) string {
	b.t.Helper()
	p := filepath.Join(b.dir, name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is umasked
		b.t.Fatal(err)
	}
	return p
}

// sh writes an executable #!/bin/sh script with body.
func (b *bed) sh(name, body string) string {
	return b.script(name, 0o755, "#!/bin/sh\n"+body+"\n")
}

func (b *bed) path(name string) string { return filepath.Join(b.work, name) }

func (b *bed) runner(cfg Config) *Runner {
	b.t.Helper()
	cfg.Dir = b.dir
	cfg.Env = append(cfg.Env, "WORK="+b.work)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(b.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := New(cfg)
	if err != nil {
		b.t.Fatalf("New() = %v", err)
	}
	b.t.Cleanup(r.Close)
	return r
}

func (b *bed) read(name string) string {
	b.t.Helper()
	data, err := os.ReadFile(b.path(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.t.Fatal(err)
	}
	return string(data)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor polls cond until it holds; it fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func pids(t *testing.T, text string) []int {
	t.Helper()
	var out []int
	for f := range strings.FieldsSeq(text) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid %q", f)
		}
		out = append(out, n)
	}
	return out
}

// states is a compact view of a result's scripts: "name:STATE:code".
func states(res Result) []string {
	var out []string
	for _, s := range res.Scripts {
		out = append(out, fmt.Sprintf("%s:%s:%d", s.Name, s.State, s.ExitCode))
	}
	return out
}

func TestScriptsListing(t *testing.T) {
	b := newBed(t)
	b.sh("10.a", "exit 0")
	b.sh("20.b.script", "exit 0")
	b.script("30.c", 0o644, "#!/bin/sh\nexit 0\n")
	b.sh("50.h", "exit 0")
	b.sh("50.h.script", "exit 0") // wins over 50.h
	for _, name := range []string{"README", "7.x", "ab.c", "10.", "40.d~", "40.e.rpmnew", "40.f.dpkg-old", "40.g.swp", "40.i.bak", "40.j.script.orig"} {
		b.sh(name, "exit 0")
	}
	if err := os.Mkdir(filepath.Join(b.dir, "60.dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/ctdb-go/script", filepath.Join(b.dir, "05.link.script")); err != nil {
		t.Fatal(err)
	}
	r := b.runner(Config{})
	got, err := r.Scripts()
	if err != nil {
		t.Fatalf("Scripts() = %v", err)
	}
	want := []control.Script{
		{Name: "05.link", Enabled: false},
		{Name: "10.a", Enabled: true},
		{Name: "20.b", Enabled: true},
		{Name: "30.c", Enabled: false},
		{Name: "50.h", Enabled: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Scripts() mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(b.logBuf.String(), "ignored=50.h\n") {
		t.Errorf("no warning about 50.h beside 50.h.script in log:\n%s", b.logBuf)
	}
}

func TestRunOrderArgsEnvironment(t *testing.T) {
	b := newBed(t)
	logScript := `printf '%s|%s|%s|%s|%s|%s\n' "${0##*/}" "$*" "$CTDB_BASE" "$EXTRA" "$(readlink /proc/$$/fd/0)" "$(cat)" >>"$WORK/log"`
	b.sh("10.first", logScript)
	b.sh("20.second.script", logScript)
	b.script("15.off", 0o644, "#!/bin/sh\n"+logScript+"\n")
	b.sh("30.backup~", logScript)
	r := b.runner(Config{Env: []string{"EXTRA=x y", "CTDB_BASE=/overridden"}})

	res := r.Run(context.Background(), "takeip", "eth1", "198.18.0.1", "24")
	if res.Status != StatusOK || res.Summary() != 0 {
		t.Fatalf("Run() status = %v (%s), want OK; scripts %v", res.Status, res.Err, states(res))
	}
	wantStates := []string{"10.first:OK:0", "15.off:DISABLED:0", "20.second:OK:0"}
	if diff := cmp.Diff(wantStates, states(res)); diff != "" {
		t.Errorf("scripts mismatch (-want +got):\n%s", diff)
	}
	want := fmt.Sprintf("10.first|takeip eth1 198.18.0.1 24|%[1]s|x y|/dev/null|\n"+
		"20.second.script|takeip eth1 198.18.0.1 24|%[1]s|x y|/dev/null|\n", b.base)
	if got := b.read("log"); got != want {
		t.Errorf("scripts logged\n%s\nwant\n%s", got, want)
	}
	if diff := cmp.Diff([]string{"eth1", "198.18.0.1", "24"}, res.Args); diff != "" {
		t.Errorf("Result.Args mismatch (-want +got):\n%s", diff)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		wantState State
		wantCode  int
		wantErr   string
	}{
		{"exit 1", "#!/bin/sh\necho failing\nexit 1\n", ScriptError, 1, ""},
		// CTDB reads 64-254 as errno+64 (64 = success, 77 = disabled); we do not.
		{"exit 64", "#!/bin/sh\nexit 64\n", ScriptError, 64, ""},
		{"exit 77", "#!/bin/sh\nexit 77\n", ScriptError, 77, ""},
		{"exit 255", "#!/bin/sh\nexit 255\n", ScriptError, 255, ""},
		{"env cannot find interpreter", "#!/usr/bin/env ctdb-go-no-such-interpreter\nexit 0\n", ScriptError, 127, ""},
		{"missing interpreter", "#!/nonexistent/ctdb-go/sh\nexit 0\n", ScriptCannotRun, int(syscall.ENOENT), "No such file or directory"},
		{"no #! line", "echo hello\nexit 0\n", ScriptCannotRun, int(syscall.ENOEXEC), "Exec format error"},
		{"killed by signal", "#!/bin/sh\nkill -KILL $$\n", ScriptError, 128 + 9, "killed by signal 9 (killed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			b.script("10.test", 0o755, tt.file)
			b.sh("20.after", `touch "$WORK/after"`)
			r := b.runner(Config{})
			res := r.Run(context.Background(), "monitor")
			if res.Status != StatusFailed {
				t.Fatalf("Run() status = %v, want FAILED", res.Status)
			}
			if len(res.Scripts) != 1 {
				t.Fatalf("Run() scripts = %v, want only 10.test (first failure stops the event)", states(res))
			}
			s := res.Scripts[0]
			if s.State != tt.wantState || s.ExitCode != tt.wantCode || s.Err != tt.wantErr {
				t.Errorf("script result = %s %d %q, want %s %d %q", s.State, s.ExitCode, s.Err, tt.wantState, tt.wantCode, tt.wantErr)
			}
			if res.Summary() != tt.wantCode {
				t.Errorf("Summary() = %d, want %d", res.Summary(), tt.wantCode)
			}
			if b.read("after") != "" || fileExists(b.path("after")) {
				t.Error("20.after ran after a failing script")
			}
			got, ok := r.Status("monitor")
			if !ok || got.Status != StatusFailed {
				t.Errorf("Status(monitor) = %v, %v, want the failed run", got.Status, ok)
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestOutput(t *testing.T) {
	tests := []struct {
		name          string
		cap           int
		body          string
		want          string
		wantTruncated bool
	}{
		{"stdout and stderr in order", 0, "echo out; echo err >&2; echo out2", "out\nerr\nout2\n", false},
		{"tail kept", 1024, `head -c 100000 /dev/zero | tr '\0' a; echo END`, strings.Repeat("a", 1020) + "END\n", true},
		{"exactly the cap", 4, `printf abcd`, "abcd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			b.sh("10.out", tt.body)
			r := b.runner(Config{OutputCap: tt.cap})
			res := r.Run(context.Background(), "monitor")
			if res.Status != StatusOK {
				t.Fatalf("Run() status = %v, want OK", res.Status)
			}
			s := res.Scripts[0]
			if s.Output != tt.want || s.Truncated != tt.wantTruncated {
				t.Errorf("Output = %q (truncated %v), want %q (truncated %v)", s.Output, s.Truncated, tt.want, tt.wantTruncated)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
		trunc  bool
	}{
		{"fits", 8, []string{"abc", "def"}, "abcdef", false},
		{"many small", 4, []string{"ab", "cd", "ef", "gh", "i"}, "fghi", true},
		{"one big", 3, []string{"abcdef"}, "def", true},
		{"big after small", 3, []string{"x", "abc"}, "abc", true},
		{"cut rune dropped", 4, []string{"aé", "éb"}, "éb", true}, // "aé" + "éb" = a c3 a9 c3 a9 b: the tail starts mid-rune
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &tailBuffer{max: tt.max}
			for _, w := range tt.writes {
				tb.Write([]byte(w))
			}
			got, trunc := tb.String()
			if got != tt.want || trunc != tt.trunc {
				t.Errorf("String() = %q, %v, want %q, %v", got, trunc, tt.want, tt.trunc)
			}
		})
	}
}

// The hung script leaves children in its group, one ignoring SIGTERM, all
// holding the output pipe: Run must return soon after the deadline and none
// of them may survive.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	b := newBed(t)
	b.sh("10.hang", `
echo $$ >"$WORK/leader"
sleep 1000 &
echo $! >>"$WORK/children"
(sleep 1000; echo never) &
echo $! >>"$WORK/children"
sh -c 'trap "" TERM; echo $$ >>"$WORK/children"; while :; do sleep 1; done' &
while [ "$(wc -l <"$WORK/children")" -lt 3 ]; do sleep 0.01; done
echo children started
wait`)
	b.sh("20.after", `touch "$WORK/after"`)
	debug := filepath.Join(b.work, "debug.sh")
	if err := os.WriteFile(debug, []byte("#!/bin/sh\necho \"$1 $2\" >\"$WORK/debug\"\necho debugging \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const timeout, grace = 500 * time.Millisecond, 200 * time.Millisecond
	r := b.runner(Config{Timeout: timeout, KillGrace: grace, DebugScript: debug})

	start := time.Now()
	res := r.Run(context.Background(), "startup")
	took := time.Since(start)

	if res.Status != StatusTimedOut || res.Summary() != 110 {
		t.Errorf("Run() = %v, summary %d, want TIMEDOUT, 110", res.Status, res.Summary())
	}
	if diff := cmp.Diff([]string{"10.hang:TIMEDOUT:110"}, states(res)); diff != "" {
		t.Errorf("scripts mismatch (-want +got):\n%s", diff)
	}
	if res.Scripts[0].Output != "children started\n" {
		t.Errorf("output = %q, want %q", res.Scripts[0].Output, "children started\n")
	}
	// A generous guard only: far above the deadline plus the grace.
	if limit := 10 * (timeout + grace); took > limit {
		t.Errorf("Run() took %v, more than %v", took, limit)
	}
	leader := strings.TrimSpace(b.read("leader"))
	if got, want := strings.TrimSpace(b.read("debug")), leader+" startup"; got != want {
		t.Errorf("debug script got %q, want %q", got, want)
	}
	if !strings.Contains(b.logBuf.String(), "event_debug: debugging "+leader) {
		t.Errorf("debug script output not logged:\n%s", b.logBuf)
	}
	children := pids(t, b.read("children"))
	t.Cleanup(func() { // only if this test failed and left them
		for _, pid := range children {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if len(children) != 3 {
		t.Fatalf("children = %v, want 3", children)
	}
	for _, pid := range append(children, pids(t, leader)...) {
		waitFor(t, fmt.Sprintf("process %d to be gone", pid), func() bool { return !alive(pid) })
	}
	if fileExists(b.path("after")) {
		t.Error("20.after ran after a timed-out script")
	}
	if got, ok := r.Status("startup"); !ok || got.Status != StatusTimedOut {
		t.Errorf("Status(startup) = %v, %v, want TIMEDOUT recorded", got.Status, ok)
	}
}

// A script that exits normally may leave a child holding the pipe: the
// event ends without waiting for the pipe, and the child is killed (see
// reap_test.go for the cases that leave the process group).
func TestLeftoverChildDoesNotBlock(t *testing.T) {
	b := newBed(t)
	b.sh("10.daemonize", `sleep 1000 & echo $! >"$WORK/child"; echo started`)
	r := b.runner(Config{Timeout: time.Minute})
	start := time.Now()
	res := r.Run(context.Background(), "startup")
	took := time.Since(start)
	child := pids(t, b.read("child"))
	t.Cleanup(func() { syscall.Kill(child[0], syscall.SIGKILL) })
	if res.Status != StatusOK || res.Scripts[0].Output != "started\n" {
		t.Fatalf("Run() = %v, output %q, want OK, %q", res.Status, res.Scripts[0].Output, "started\n")
	}
	if took > 10*time.Second {
		t.Errorf("Run() took %v: it waited for the child", took)
	}
	waitFor(t, "the left-behind child to be killed", func() bool { return !alive(child[0]) })
}

func TestDeadlineBetweenScripts(t *testing.T) {
	b := newBed(t)
	b.sh("10.slow", "sleep 0.3")
	b.sh("20.next", `touch "$WORK/next"`)
	r := b.runner(Config{Timeout: 100 * time.Millisecond, KillGrace: 10 * time.Millisecond})
	res := r.Run(context.Background(), "recovered")
	if res.Status != StatusTimedOut {
		t.Errorf("Run() = %v, want TIMEDOUT; scripts %v", res.Status, states(res))
	}
	if fileExists(b.path("next")) {
		t.Error("20.next ran after the deadline")
	}
}

func TestSlowScriptWarning(t *testing.T) {
	b := newBed(t)
	b.sh("10.slowish", "sleep 0.6")
	r := b.runner(Config{Timeout: time.Second})
	res := r.Run(context.Background(), "monitor")
	if res.Status != StatusOK {
		t.Fatalf("Run() = %v, want OK", res.Status)
	}
	if !strings.Contains(b.logBuf.String(), `msg="slow event script"`) {
		t.Errorf("no slow-script warning in log:\n%s", b.logBuf)
	}
}

// A monitor is cancelled by any other event; the cancelled run is not
// recorded and its script is killed.
func TestMonitorPreempted(t *testing.T) {
	b := newBed(t)
	b.sh("10.svc", `
case "$1" in
monitor) echo $$ >"$WORK/monitor"; sleep 1000 ;;
takeip) touch "$WORK/takeip" ;;
esac`)
	r := b.runner(Config{Timeout: time.Minute})
	done := make(chan Result)
	go func() { done <- r.Run(context.Background(), "monitor") }()
	waitFor(t, "monitor to start", func() bool { return strings.HasSuffix(b.read("monitor"), "\n") })

	take := r.Run(context.Background(), "takeip", "eth1", "198.18.0.1", "24")
	mon := <-done
	if take.Status != StatusOK || !fileExists(b.path("takeip")) {
		t.Errorf("takeip = %v, want OK and run", take.Status)
	}
	if mon.Status != StatusCancelled || mon.Summary() != 125 {
		t.Errorf("monitor = %v, summary %d, want CANCELLED, 125", mon.Status, mon.Summary())
	}
	if diff := cmp.Diff([]string{"10.svc:CANCELLED:0"}, states(mon)); diff != "" {
		t.Errorf("monitor scripts mismatch (-want +got):\n%s", diff)
	}
	if _, ok := r.Status("monitor"); ok {
		t.Error("Status(monitor) found a cancelled run, want none recorded")
	}
	if _, ok := r.Status("takeip"); !ok {
		t.Error("Status(takeip) = none, want the run")
	}
	pid := pids(t, b.read("monitor"))[0]
	waitFor(t, "the monitor script to be gone", func() bool { return !alive(pid) })
}

func TestMonitorWhileOtherEventRuns(t *testing.T) {
	b := newBed(t)
	b.sh("10.svc", `
case "$1" in
monitor) touch "$WORK/monitor-ran" ;;
releaseip)
	touch "$WORK/releasing"
	while [ ! -e "$WORK/go" ]; do sleep 0.01; done ;;
esac`)
	r := b.runner(Config{Timeout: time.Minute})
	done := make(chan Result)
	go func() { done <- r.Run(context.Background(), "releaseip", "eth1", "198.18.0.1", "24") }()
	waitFor(t, "releaseip to start", func() bool { return fileExists(b.path("releasing")) })

	mon := r.Run(context.Background(), "monitor")
	if mon.Status != StatusCancelled || len(mon.Scripts) != 0 || fileExists(b.path("monitor-ran")) {
		t.Errorf("monitor during releaseip = %v, scripts %v, want CANCELLED at once", mon.Status, states(mon))
	}
	if err := os.WriteFile(b.path("go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if rel := <-done; rel.Status != StatusOK {
		t.Errorf("releaseip = %v, want OK", rel.Status)
	}
	if _, ok := r.Status("monitor"); ok {
		t.Error("Status(monitor) found the cancelled run")
	}
	// Now nothing runs: monitor runs.
	if mon := r.Run(context.Background(), "monitor"); mon.Status != StatusOK {
		t.Errorf("monitor afterwards = %v, want OK", mon.Status)
	}
}

// Two takeip events for different addresses run at the same time: each
// script waits until both have started, which would time out if the runner
// ran them one after the other.
func TestConcurrentTakeip(t *testing.T) {
	b := newBed(t)
	b.sh("10.both", `
touch "$WORK/$3"
i=0
until [ -e "$WORK/198.18.0.1" ] && [ -e "$WORK/198.18.0.2" ]; do
	i=$((i + 1))
	[ "$i" -gt 2000 ] && exit 3
	sleep 0.01
done`)
	r := b.runner(Config{Timeout: time.Minute})
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i := range 2 {
		wg.Go(func() {
			results[i] = r.Run(context.Background(), "takeip", "eth1", fmt.Sprintf("198.18.0.%d", i+1), "24")
		})
	}
	wg.Wait()
	for i, res := range results {
		if res.Status != StatusOK {
			t.Errorf("takeip #%d = %v %v, want OK", i+1, res.Status, states(res))
		}
	}
}

func TestCallerCancel(t *testing.T) {
	b := newBed(t)
	b.sh("10.wait", `echo $$ >"$WORK/pid"; sleep 1000`)
	r := b.runner(Config{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- r.Run(ctx, "shutdown") }()
	waitFor(t, "script to start", func() bool { return strings.HasSuffix(b.read("pid"), "\n") })
	cancel()
	res := <-done
	if res.Status != StatusCancelled || res.Err != "cancelled by the caller" {
		t.Errorf("Run() = %v %q, want CANCELLED by the caller", res.Status, res.Err)
	}
	if _, ok := r.Status("shutdown"); ok {
		t.Error("cancelled run recorded")
	}
	pid := pids(t, b.read("pid"))[0]
	waitFor(t, "script to be gone", func() bool { return !alive(pid) })
}

func TestStatusPersists(t *testing.T) {
	b := newBed(t)
	b.sh("10.ok", "echo fine")
	b.sh("20.bad", "echo broken >&2; exit 3")
	dbPath := filepath.Join(t.TempDir(), state.FileName)
	st, err := state.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	r := b.runner(Config{Store: st})
	res := r.Run(context.Background(), "ipreallocated")
	if res.Status != StatusFailed || res.Summary() != 3 {
		t.Fatalf("Run() = %v summary %d, want FAILED 3", res.Status, res.Summary())
	}
	r.Flush()
	st.Close()

	st, err = state.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r2 := b.runner(Config{Store: st})
	got, ok := r2.Status("ipreallocated")
	if !ok {
		t.Fatal("Status(ipreallocated) after reopen: none")
	}
	if diff := cmp.Diff(res, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Status() after reopen mismatch (-want +got):\n%s", diff)
	}
	if got.Scripts[1].Output != "broken\n" {
		t.Errorf("stored output = %q, want %q", got.Scripts[1].Output, "broken\n")
	}
	if _, ok := r2.Status("monitor"); ok {
		t.Error("Status(monitor) found a run that never happened")
	}
}

func TestBadArguments(t *testing.T) {
	b := newBed(t)
	b.sh("10.x", `touch "$WORK/ran"`)
	r := b.runner(Config{})
	tests := []struct {
		event string
		args  []string
	}{
		{"takeip", []string{"eth1", "198.18.0.1"}},
		{"updateip", []string{"eth1", "eth2", "198.18.0.1"}},
		{"monitor", []string{"extra"}},
		{"fence", []string{"1"}},
		{"", nil},
		{"../x", nil},
	}
	for _, tt := range tests {
		res := r.Run(context.Background(), tt.event, tt.args...)
		if res.Status != StatusFailed || res.Summary() != int(syscall.EINVAL) || res.Err == "" {
			t.Errorf("Run(%q, %q) = %v summary %d %q, want FAILED 22 with a reason", tt.event, tt.args, res.Status, res.Summary(), res.Err)
		}
		if _, ok := r.Status(tt.event); ok {
			t.Errorf("Run(%q) with bad arguments was recorded", tt.event)
		}
	}
	if fileExists(b.path("ran")) {
		t.Error("a script ran for an event with bad arguments")
	}
	if res := r.Run(context.Background(), "custom-event", "any", "args"); res.Status != StatusOK || !fileExists(b.path("ran")) {
		t.Errorf("unknown event = %v, want passed through to the scripts", res.Status)
	}
}

func TestEventsDirMissing(t *testing.T) {
	if _, err := New(Config{Dir: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Error("New() with a missing events dir = nil error")
	}
	b := newBed(t)
	r := b.runner(Config{})
	if err := os.Remove(b.dir); err != nil {
		t.Fatal(err)
	}
	res := r.Run(context.Background(), "monitor")
	if res.Status != StatusFailed || res.Summary() != int(syscall.ENOENT) {
		t.Errorf("Run() without events dir = %v summary %d, want FAILED %d", res.Status, res.Summary(), syscall.ENOENT)
	}
	if got, ok := r.Status("monitor"); !ok || got.Err == "" {
		t.Errorf("Status(monitor) = %+v, %v, want the failure with its reason", got, ok)
	}
}

func TestEnableDisable(t *testing.T) {
	b := newBed(t)
	p := b.script("10.a.script", 0o640, "#!/bin/sh\nexit 0\n")
	if err := os.Symlink(p, filepath.Join(b.dir, "20.link")); err != nil {
		t.Fatal(err)
	}
	r := b.runner(Config{})
	mode := func() os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if err := r.Enable("10.a"); err != nil {
		t.Fatalf("Enable(10.a) = %v", err)
	}
	if got := mode(); got != 0o751 {
		t.Errorf("mode after Enable = %o, want 751", got)
	}
	if ss, _ := r.Scripts(); len(ss) == 0 || !ss[0].Enabled {
		t.Errorf("Scripts() after Enable = %v, want 10.a enabled", ss)
	}
	if err := r.Disable("10.a.script"); err != nil {
		t.Fatalf("Disable(10.a.script) = %v", err)
	}
	if got := mode(); got != 0o640 {
		t.Errorf("mode after Disable = %o, want 640", got)
	}

	errTests := []struct {
		name  string
		want  string
		errno syscall.Errno
	}{
		{"99.missing", "script 99.missing does not exist in " + b.dir, syscall.ENOENT},
		{"bad", "script bad is invalid", syscall.EINVAL},
		{"10.x/../y", "script 10.x/../y is invalid", syscall.EINVAL},
		{"20.link", "script 20.link is not a regular file", syscall.EINVAL},
	}
	for _, tt := range errTests {
		err := r.Enable(tt.name)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.errno) {
			t.Errorf("Enable(%q) = %v, want %q (%v)", tt.name, err, tt.want, tt.errno)
		}
	}
	if err := r.Disable("99.missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Disable(99.missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestControl(t *testing.T) {
	start := time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)
	ok := ScriptResult{Name: "10.a", State: ScriptOK, Start: start, Duration: time.Millisecond, Output: "hi\n"}
	tests := []struct {
		name string
		res  Result
		want control.EventStatus
	}{
		{"ok", Result{Event: "monitor", Status: StatusOK, Scripts: []ScriptResult{ok, {Name: "20.b", State: ScriptDisabled}}},
			control.EventStatus{Event: "monitor", Summary: 0, Scripts: []control.ScriptStatus{
				{Name: "10.a", State: "OK", Start: start, Duration: time.Millisecond, Output: "hi\n"},
				{Name: "20.b", State: "DISABLED"},
			}}},
		{"failed", Result{Event: "monitor", Status: StatusFailed, Scripts: []ScriptResult{ok, {Name: "20.b", State: ScriptError, ExitCode: 3}}},
			control.EventStatus{Event: "monitor", Summary: 3, Scripts: []control.ScriptStatus{
				{Name: "10.a", State: "OK", Start: start, Duration: time.Millisecond, Output: "hi\n"},
				{Name: "20.b", State: "ERROR", ExitCode: 3},
			}}},
		{"cannot run", Result{Event: "takeip", Status: StatusFailed, Scripts: []ScriptResult{{Name: "10.a", State: ScriptCannotRun, ExitCode: 8, Err: "Exec format error"}}},
			control.EventStatus{Event: "takeip", Summary: 8, Scripts: []control.ScriptStatus{{Name: "10.a", State: "CANNOT RUN", ExitCode: 8, Err: "Exec format error"}}}},
		{"timed out", Result{Event: "monitor", Status: StatusTimedOut, Scripts: []ScriptResult{{Name: "10.a", State: ScriptTimedOut, ExitCode: 110}}},
			control.EventStatus{Event: "monitor", Summary: 110, Scripts: []control.ScriptStatus{{Name: "10.a", State: "TIMEDOUT", ExitCode: 110}}}},
		{"cancelled", Result{Event: "monitor", Status: StatusCancelled},
			control.EventStatus{Event: "monitor", Summary: 125, Scripts: []control.ScriptStatus{}}},
		{"no events dir", Result{Event: "monitor", Status: StatusFailed, ErrCode: 2},
			control.EventStatus{Event: "monitor", Summary: 2, Scripts: []control.ScriptStatus{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.res.Control()); diff != "" {
				t.Errorf("Control() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// gatedStore is a ResultStore whose writes wait for its gate to open.
type gatedStore struct {
	gate chan struct{}
	mu   sync.Mutex
	data map[string][]byte
	puts int
}

func (s *gatedStore) PutEventResult(event string, data []byte) error {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[event] = data
	s.puts++
	return nil
}

func (s *gatedStore) EventResult(event string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[event], nil
}

// TestStoreDoesNotHoldEvents: a slow Store does not hold events up (a
// takeover run ends hundreds at once); Flush waits for the writes, and
// the Store ends with the newest result of each event.
func TestStoreDoesNotHoldEvents(t *testing.T) {
	b := newBed(t)
	b.sh("10.args", `echo "$@"`)
	st := &gatedStore{gate: make(chan struct{}), data: map[string][]byte{}}
	r := b.runner(Config{Store: st})
	var last Result
	for i := range 20 {
		// Would block at the first write if results were stored in line.
		last = r.Run(context.Background(), "takeip", "eth0", fmt.Sprintf("198.18.0.%d", i+1), "24")
		if last.Status != StatusOK {
			t.Fatalf("Run(takeip) #%d = %v", i, last.Status)
		}
	}
	if got, ok := r.Status("takeip"); !ok || got.Args[1] != "198.18.0.20" {
		t.Errorf("Status(takeip) before the store wrote = %v, %v; want the last run", got.Args, ok)
	}
	close(st.gate)
	r.Flush()
	var stored Result
	if err := json.Unmarshal(st.data["takeip"], &stored); err != nil {
		t.Fatalf("stored takeip result: %v", err)
	}
	if diff := cmp.Diff(last, stored, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stored result is not the newest run (-want +got):\n%s", diff)
	}
	if st.puts >= 20 {
		t.Errorf("%d writes for 20 runs of one event; want them coalesced", st.puts)
	}
}

// TestWithEnv: variables given with WithEnv reach that run's scripts, over
// the Runner's own, and no other run's.
func TestWithEnv(t *testing.T) {
	b := newBed(t)
	b.sh("10.env", `echo "X=${X:-unset} Y=${Y:-unset}"`)
	r := b.runner(Config{Env: []string{"X=runner"}})
	out := func(ctx context.Context) string {
		t.Helper()
		res := r.Run(ctx, "releaseip", "eth0", "198.18.0.1", "24")
		if res.Status != StatusOK {
			t.Fatalf("Run() = %v", res.Status)
		}
		return res.Scripts[0].Output
	}
	ctx := WithEnv(context.Background(), "Y=1")
	if got, want := out(WithEnv(ctx, "X=run")), "X=run Y=1\n"; got != want {
		t.Errorf("with WithEnv: output %q, want %q", got, want)
	}
	if got, want := out(context.Background()), "X=runner Y=unset\n"; got != want {
		t.Errorf("without: output %q, want %q", got, want)
	}
}
