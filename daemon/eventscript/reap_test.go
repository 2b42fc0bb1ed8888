package eventscript

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reapers are the mechanisms a test runs under: the environment mark
// always, the cgroup where this process may make one.
func reapers(t testing.TB) []Reaper {
	t.Helper()
	return []Reaper{ReaperEnv, ReaperCgroup}
}

// needReaper skips the test when m cannot work here (only ReaperCgroup
// can be unavailable).
func needReaper(t testing.TB, m Reaper) {
	t.Helper()
	if m != ReaperCgroup {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("ReaperCgroup needs root (writes to the cgroup v1 freezer hierarchy)")
	}
	p, err := newCgroupPool("")
	if err != nil {
		t.Skipf("ReaperCgroup unavailable: %v", err)
	}
	p.close()
}

// Every process a script starts ends with it, whether it stays in the
// script's process group or not, whatever the script's end.
func TestLeftBehindKilled(t *testing.T) {
	// Each body starts processes that write their PID to $WORK/pids and
	// waits until they have.
	tests := []struct {
		name      string
		body      string
		n         int // processes started
		wantState State
		timeout   time.Duration
		escapes   bool // leaves the process group: only the reaper finds it
	}{
		{
			name:      "background child, exit 0",
			body:      `sleep 1000 & echo $! >>"$WORK/pids"`,
			n:         1,
			wantState: ScriptOK,
		},
		{
			name:      "setsid grandchild, exit 0",
			body:      `setsid sh -c 'echo $$ >>"$WORK/pids"; exec sleep 1000' </dev/null >/dev/null 2>&1 &`,
			n:         1,
			wantState: ScriptOK,
			escapes:   true,
		},
		{
			name:      "double fork, setsid, exit 1",
			body:      `sh -c 'setsid sh -c "echo \$\$ >>\"$WORK/pids\"; exec sleep 1000" >/dev/null 2>&1 &'; sleep 1000 >/dev/null & echo $! >>"$WORK/pids"`,
			n:         2,
			wantState: ScriptError,
			escapes:   true,
		},
		{
			name: "timed out with a setsid grandchild",
			body: `setsid sh -c 'echo $$ >>"$WORK/pids"; trap "" TERM; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &
while [ "$(wc -l 2>/dev/null <"$WORK/pids" || echo 0)" -lt 1 ]; do sleep 0.01; done
sleep 1000`,
			n:         1,
			wantState: ScriptTimedOut,
			timeout:   500 * time.Millisecond,
			escapes:   true,
		},
	}
	for _, m := range reapers(t) {
		for _, tt := range tests {
			t.Run(m.String()+"/"+tt.name, func(t *testing.T) {
				needReaper(t, m)
				b := newBed(t)
				exit := "exit 0"
				if tt.wantState == ScriptError {
					exit = "exit 1"
				}
				wait := `while [ "$(wc -l 2>/dev/null <"$WORK/pids" || echo 0)" -lt ` + strconv.Itoa(tt.n) + ` ]; do sleep 0.01; done`
				b.sh("10.leave", tt.body+"\n"+wait+"\necho \"$"+RunIDEnv+"\" >\"$WORK/id\"\necho done\n"+exit)
				r := b.runner(Config{Reaper: m, Timeout: tt.timeout, KillGrace: 50 * time.Millisecond})
				if got := r.Reaper(); got != m {
					t.Fatalf("Reaper() = %v, want %v", got, m)
				}
				res := r.Run(context.Background(), "startup")
				started := pids(t, b.read("pids"))
				t.Cleanup(func() { // only if the test failed and left them
					for _, pid := range started {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				})
				if got := res.Scripts[0].State; got != tt.wantState {
					t.Errorf("state = %v, want %v", got, tt.wantState)
				}
				if tt.wantState != ScriptTimedOut {
					if got := res.Scripts[0].Output; got != "done\n" {
						t.Errorf("output = %q, want %q", got, "done\n")
					}
					if id := strings.TrimSpace(b.read("id")); !strings.HasPrefix(id, strconv.Itoa(os.Getpid())+"-") {
						t.Errorf("%s = %q, want PID-N", RunIDEnv, id)
					}
				}
				if len(started) != tt.n {
					t.Fatalf("started = %v, want %d PIDs", started, tt.n)
				}
				for _, pid := range started {
					if m == ReaperCgroup {
						// Run waited until the cgroup was empty.
						if alive(pid) {
							t.Errorf("process %d alive after Run returned", pid)
						}
						continue
					}
					// Killed and no longer marked, but maybe still exiting.
					waitFor(t, "process "+strconv.Itoa(pid)+" to be gone", func() bool { return !alive(pid) })
				}
				if tt.escapes && !strings.Contains(b.logBuf.String(), "killed processes the event script left behind") {
					t.Errorf("no log of the kill:\n%s", b.logBuf)
				}
			})
		}
	}
}

// A script that leaves nothing costs no kill work and no log line; the
// cgroup goes back to the pool and Close removes it.
func TestReaperQuietRun(t *testing.T) {
	for _, m := range reapers(t) {
		t.Run(m.String(), func(t *testing.T) {
			needReaper(t, m)
			b := newBed(t)
			b.sh("10.a", "echo a")
			b.sh("20.b", "echo b >&2; exit 3")
			r := b.runner(Config{Reaper: m})
			for range 3 {
				res := r.Run(context.Background(), "monitor")
				if got, want := strings.Join(states(res), " "), "10.a:OK:0 20.b:ERROR:3"; got != want {
					t.Fatalf("Run() = %s, want %s", got, want)
				}
				if res.Scripts[0].Output != "a\n" || res.Scripts[1].Output != "b\n" {
					t.Fatalf("outputs = %q, %q", res.Scripts[0].Output, res.Scripts[1].Output)
				}
			}
			if strings.Contains(b.logBuf.String(), "left behind") {
				t.Errorf("kill logged for scripts that left nothing:\n%s", b.logBuf)
			}
			if m != ReaperCgroup {
				return
			}
			pool := r.reap.pool
			pool.mu.Lock()
			made := append([]string(nil), pool.made...)
			idle := len(pool.idle)
			pool.mu.Unlock()
			if len(made) != 1 || idle != 1 {
				t.Errorf("pool made %v with %d idle, want one cgroup reused", made, idle)
			}
			r.Close()
			for _, cg := range made {
				if _, err := os.Stat(cg); err == nil {
					t.Errorf("cgroup %s still there after Close", cg)
				}
			}
		})
	}
}

// ReaperCgroup is an error, not a silent fallback, when no cgroup can be
// made.
func TestReaperCgroupUnavailable(t *testing.T) {
	b := newBed(t)
	_, err := New(Config{Dir: b.dir, Reaper: ReaperCgroup, CgroupRoot: t.TempDir()})
	if err == nil {
		t.Fatal("New(ReaperCgroup, a root that is no cgroup) = nil error")
	}
	r, err := New(Config{Dir: b.dir, CgroupRoot: t.TempDir()})
	if err != nil {
		t.Fatalf("New(ReaperAuto, a root that is no cgroup) = %v", err)
	}
	if got := r.Reaper(); got != ReaperEnv {
		t.Errorf("Reaper() = %v, want env", got)
	}
}

func TestHasVar(t *testing.T) {
	kv := []byte("CTDB_EVENT_RUN_ID=1-2\x00")
	tests := []struct {
		env  string
		want bool
	}{
		{"CTDB_EVENT_RUN_ID=1-2\x00", true},
		{"A=b\x00CTDB_EVENT_RUN_ID=1-2\x00C=d\x00", true},
		{"CTDB_EVENT_RUN_ID=1-23\x00", false},
		{"XCTDB_EVENT_RUN_ID=1-2\x00", false},
		{"XCTDB_EVENT_RUN_ID=1-2\x00CTDB_EVENT_RUN_ID=1-2\x00", true},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasVar([]byte(tt.env), kv); got != tt.want {
			t.Errorf("hasVar(%q) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// BenchmarkRunCleanup measures what the reaper adds to one script run:
//
//	exec/none     start /bin/true and wait for it: the baseline
//	exec/MODE     the same with the reaper's begin, start and end
//	cleanup/MODE  only end, for a script that left nothing (the common case)
//	enter/cgroup  only moving a thread into a run cgroup and back
func BenchmarkRunCleanup(b *testing.B) {
	sh, err := exec.LookPath("true")
	if err != nil {
		b.Skip(err)
	}
	runOnce := func(b *testing.B, rp *reaper, timeEnd bool) {
		var rn *run
		if rp != nil {
			rn = rp.begin()
		}
		cmd := exec.Command(sh)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if rp != nil {
			cmd.Env = []string{RunIDEnv + "=" + rn.id}
			if _, err := rp.start(rn, cmd); err != nil {
				b.Fatal(err)
			}
			rn.leader = cmd.Process.Pid
		} else if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitExited(cmd.Process.Pid)
		if rp != nil {
			if timeEnd {
				b.StartTimer()
			}
			if _, err := rp.end(rn); err != nil {
				b.Fatal(err)
			}
			if timeEnd {
				b.StopTimer()
			}
		}
		cmd.Wait()
	}
	b.Run("exec/none", func(b *testing.B) {
		for b.Loop() {
			runOnce(b, nil, false)
		}
	})
	for _, m := range []Reaper{ReaperEnv, ReaperCgroup} {
		rp, _, err := newReaper(m, "")
		if err != nil {
			b.Logf("%v: %v", m, err)
			continue
		}
		b.Run("exec/"+m.String(), func(b *testing.B) {
			for b.Loop() {
				runOnce(b, rp, false)
			}
		})
		b.Run("cleanup/"+m.String(), func(b *testing.B) {
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				runOnce(b, rp, true)
			}
		})
		if rp.pool != nil {
			b.Run("enter/cgroup", func(b *testing.B) {
				cg, err := rp.pool.get()
				if err != nil {
					b.Fatal(err)
				}
				defer rp.pool.put(cg)
				for b.Loop() {
					if err := rp.pool.inside(cg, func() {}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		rp.close()
	}
}

// The run cgroups sit under ctdbd's own freezer cgroup, named PID-N.
func TestCgroupLayout(t *testing.T) {
	needReaper(t, ReaperCgroup)
	p, err := newCgroupPool("")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	cg, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(cg)
	if dir, name := filepath.Split(cg); filepath.Base(dir) != cgroupDirName || !strings.HasPrefix(name, strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("run cgroup %s, want .../%s/PID-N", cg, cgroupDirName)
	}
}
