package monitor

import (
	"context"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

const (
	ok        = eventscript.StatusOK
	fail      = eventscript.StatusFailed
	timedOut  = eventscript.StatusTimedOut
	cancelled = eventscript.StatusCancelled
)

func TestNext(t *testing.T) {
	s := time.Second
	tests := []struct {
		name          string
		cur           time.Duration
		changed       bool
		longest       time.Duration
		wantDelay     time.Duration
		wantFollowing time.Duration
	}{
		{"after startup", 2 * s, false, 15 * s, 2 * s, 4 * s},
		{"doubling", 4 * s, false, 15 * s, 4 * s, 8 * s},
		{"capped", 8 * s, false, 15 * s, 8 * s, 15 * s},
		{"at the cap", 15 * s, false, 15 * s, 15 * s, 15 * s},
		{"change resets to 5", 15 * s, true, 15 * s, 5 * s, 10 * s},
		{"change early", 2 * s, true, 15 * s, 5 * s, 10 * s},
		{"after change", 10 * s, false, 15 * s, 10 * s, 15 * s},
		{"interval below 5", 2 * s, true, 3 * s, 3 * s, 3 * s},
		{"long interval", 16 * s, false, 60 * s, 16 * s, 32 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := next(tt.cur, tt.changed, tt.longest)
			if d != tt.wantDelay || f != tt.wantFollowing {
				t.Errorf("next(%v, %v, %v) = %v, %v, want %v, %v", tt.cur, tt.changed, tt.longest, d, f, tt.wantDelay, tt.wantFollowing)
			}
		})
	}
}

// TestNextSequence checks CTDB's documented sequences: the delays after
// startup (2 s) and after each run.
func TestNextSequence(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		changes []bool // per run: did health change
		want    []time.Duration
	}{
		{"no changes", []bool{false, false, false, false, false}, []time.Duration{2 * s, 2 * s, 4 * s, 8 * s, 15 * s, 15 * s}},
		{"change at first run", []bool{true, false, false, false}, []time.Duration{2 * s, 5 * s, 10 * s, 15 * s, 15 * s}},
		{"change later", []bool{false, false, false, true, false}, []time.Duration{2 * s, 2 * s, 4 * s, 8 * s, 5 * s, 10 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := firstInterval
			got := []time.Duration{firstInterval}
			for _, changed := range tt.changes {
				var d time.Duration
				d, cur = next(cur, changed, 15*s)
				got = append(got, d)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name         string
		healthy      bool
		status       eventscript.Status
		timeouts     int
		wantHealthy  bool
		wantTimeouts int
	}{
		{"pass heals", false, ok, 0, true, 0},
		{"pass clears timeouts", true, ok, 5, true, 0},
		{"fail", true, fail, 0, false, 0},
		{"fail clears timeouts", false, fail, 5, false, 0},
		{"cancelled keeps healthy", true, cancelled, 2, true, 2},
		{"cancelled keeps unhealthy", false, cancelled, 0, false, 0},
		{"timeout below limit keeps healthy", true, timedOut, 0, true, 1},
		{"timeout below limit keeps unhealthy", false, timedOut, 1, false, 2},
		{"timeout at limit fails", true, timedOut, 2, false, 3},
		{"timeout above limit", false, timedOut, 3, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n := judge(tt.healthy, tt.status, tt.timeouts, 3)
			if h != tt.wantHealthy || n != tt.wantTimeouts {
				t.Errorf("judge(%v, %v, %d, 3) = %v, %d, want %v, %d", tt.healthy, tt.status, tt.timeouts, h, n, tt.wantHealthy, tt.wantTimeouts)
			}
		})
	}
}

// fakeRunner answers monitor runs from a script of statuses (then OK) and
// records when each run started, relative to its creation.
type fakeRunner struct {
	start    time.Time
	statuses []eventscript.Status
	took     time.Duration // each run's length

	mu   sync.Mutex
	runs []time.Duration
}

func newFake(statuses ...eventscript.Status) *fakeRunner {
	return &fakeRunner{start: time.Now(), statuses: statuses}
}

func (f *fakeRunner) Run(ctx context.Context, event string, args ...string) eventscript.Result {
	f.mu.Lock()
	n := len(f.runs)
	f.runs = append(f.runs, time.Since(f.start))
	f.mu.Unlock()
	if event != "monitor" || len(args) != 0 {
		panic("fakeRunner: unexpected event " + event)
	}
	if f.took > 0 {
		select {
		case <-time.After(f.took):
		case <-ctx.Done():
			return eventscript.Result{Event: event, Status: cancelled}
		}
	}
	st := ok
	if n < len(f.statuses) {
		st = f.statuses[n]
	}
	return eventscript.Result{Event: event, Status: st}
}

func (f *fakeRunner) Runs() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.runs...)
}

// harness runs a Monitor in the current synctest bubble and collects
// every health value it delivers.
type harness struct {
	m      *Monitor
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	health []bool
	closed chan struct{}
}

func start(t *testing.T, cfg Config, read bool) *harness {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{m: m, cancel: cancel, done: make(chan error, 1), closed: make(chan struct{})}
	go func() { h.done <- m.Run(ctx) }()
	if read {
		go func() {
			defer close(h.closed)
			for v := range m.Health() {
				h.mu.Lock()
				h.health = append(h.health, v)
				h.mu.Unlock()
			}
		}()
	} else {
		close(h.closed)
	}
	return h
}

// stop ends Run and returns the health values seen.
func (h *harness) stop(t *testing.T) []bool {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	<-h.closed
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health
}

func secs(fs ...float64) []time.Duration {
	out := make([]time.Duration, len(fs))
	for i, f := range fs {
		out[i] = time.Duration(math.Round(f*1000)) * time.Millisecond
	}
	return out
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []eventscript.Status
		timeoutCnt int
		runFor     time.Duration
		wantRuns   []time.Duration
		wantHealth []bool
	}{
		{
			name:     "passing: a change at the first run, then 5, 10, 15",
			runFor:   50 * time.Second,
			wantRuns: secs(2, 7, 17, 32, 47), wantHealth: []bool{true},
		},
		{
			name:     "failing: no change, 2, 2, 4, 8, 15",
			statuses: []eventscript.Status{fail, fail, fail, fail, fail, fail, fail},
			runFor:   50 * time.Second,
			wantRuns: secs(2, 4, 8, 16, 31, 46), wantHealth: nil,
		},
		{
			name:     "flapping",
			statuses: []eventscript.Status{ok, fail, fail, ok},
			runFor:   40 * time.Second,
			// 2 pass (change: 5), 7 fail (change: 5), 12 fail (10), 22 pass (change: 5), 27 (10), 37
			wantRuns: secs(2, 7, 12, 22, 27, 37), wantHealth: []bool{true, false, true},
		},
		{
			name:       "timeouts count up to TimeoutCount",
			statuses:   []eventscript.Status{ok, timedOut, timedOut, timedOut, timedOut, ok, timedOut},
			timeoutCnt: 3,
			runFor:     60 * time.Second,
			// 2 pass (5), 7 TO#1 (10), 17 TO#2 (15), 32 TO#3 unhealthy (5), 37 TO#4 (10),
			// 47 pass (5), 52 TO#1 after the reset: still healthy (10)
			wantRuns: secs(2, 7, 17, 32, 37, 47, 52), wantHealth: []bool{true, false, true},
		},
		{
			name:     "cancelled changes nothing and is retried soon",
			statuses: []eventscript.Status{ok, cancelled, fail},
			runFor:   10 * time.Second,
			// 2 pass (5), 7 cancelled (retry after 0.1 s), 7.1 fail (5)
			wantRuns: []time.Duration{2 * time.Second, 7 * time.Second, 7100 * time.Millisecond}, wantHealth: []bool{true, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(tt.statuses...)
				h := start(t, Config{Runner: f, TimeoutCount: tt.timeoutCnt}, true)
				time.Sleep(tt.runFor)
				synctest.Wait()
				wantHealthy := len(tt.wantHealth) > 0 && tt.wantHealth[len(tt.wantHealth)-1]
				if got := h.m.Healthy(); got != wantHealthy {
					t.Errorf("Healthy() = %v, want %v", got, wantHealthy)
				}
				health := h.stop(t)
				if diff := cmp.Diff(tt.wantRuns, f.Runs()); diff != "" {
					t.Errorf("run times mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantHealth, health); diff != "" {
					t.Errorf("health changes mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestTriggerDebounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		h := start(t, Config{Runner: f, Debounce: 5 * time.Millisecond}, true)
		time.Sleep(time.Second)
		for range 3 { // within the debounce: one run
			h.m.Trigger("link eth1 down")
			time.Sleep(time.Millisecond)
		}
		time.Sleep(3 * time.Second)
		h.m.Trigger("link eth1 up") // a trigger after the window: another run
		time.Sleep(time.Second)
		h.stop(t)
		// 1.005: triggered, a change (next in 5 s, replacing the 2 s timer);
		// 4.008: triggered again, no change (next in 10 s).
		want := secs(1.005, 4.008)
		if diff := cmp.Diff(want, f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestTriggerDuringRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.took = time.Second
		h := start(t, Config{Runner: f, Debounce: 5 * time.Millisecond}, true)
		h.m.Trigger("first")
		time.Sleep(500 * time.Millisecond) // inside the first run
		h.m.Trigger("during 1")
		h.m.Trigger("during 2")
		time.Sleep(12 * time.Second)
		health := h.stop(t)
		// 0.005 run (till 1.005; a change: next in 5 s), 1.010 one more run
		// for both triggers (till 2.010, no change: next in 10 s), 12.010.
		want := secs(0.005, 1.010, 12.010)
		if diff := cmp.Diff(want, f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]bool{true}, health); diff != "" {
			t.Errorf("health changes mismatch (-want +got):\n%s", diff)
		}
	})
}

// A scheduled run that comes while a trigger waits out its debounce
// serves the trigger too.
func TestScheduledRunServesPendingTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		h := start(t, Config{Runner: f, Debounce: 100 * time.Millisecond}, true)
		time.Sleep(1950 * time.Millisecond)
		h.m.Trigger("link") // would run at 2.05; the 2 s run comes first
		time.Sleep(3 * time.Second)
		h.stop(t)
		if diff := cmp.Diff(secs(2), f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestCanRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		begin := time.Now()
		canRun := func() bool { return time.Since(begin) >= 9*time.Second }
		h := start(t, Config{Runner: f, CanRun: canRun}, true)
		time.Sleep(3 * time.Second)
		h.m.Trigger("paused") // skipped: the node may not run monitor
		time.Sleep(13 * time.Second)
		health := h.stop(t)
		// Skipped at 2, 4, 6, 8 (the interval stays 2 s), run at 10 (a
		// change: 5 s), 15.
		if diff := cmp.Diff(secs(10, 15), f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]bool{true}, health); diff != "" {
			t.Errorf("health changes mismatch (-want +got):\n%s", diff)
		}
	})
}

// Nobody reads Health: the monitor goes on, and the channel then holds the
// latest value only.
func TestHealthLatestValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(ok, fail, ok, ok)
		h := start(t, Config{Runner: f}, false)
		time.Sleep(20 * time.Second) // runs at 2, 7, 12, 17: three changes
		synctest.Wait()
		if n := len(f.Runs()); n != 4 {
			t.Errorf("runs = %d, want 4 (the monitor must not wait for a reader)", n)
		}
		select {
		case v := <-h.m.Health():
			if !v {
				t.Errorf("Health() gave %v, want the latest change, true", v)
			}
		default:
			t.Error("Health() has no value after three changes")
		}
		select {
		case v := <-h.m.Health():
			t.Errorf("Health() gave a second value %v, want only the latest", v)
		default:
		}
		h.stop(t)
		if _, open := <-h.m.Health(); open {
			t.Error("Health() not closed after Run returned")
		}
	})
}

func TestShutdownDuringRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.took = time.Hour
		h := start(t, Config{Runner: f}, true)
		time.Sleep(3 * time.Second) // the run started at 2 s and hangs
		if health := h.stop(t); len(health) != 0 {
			t.Errorf("health changes = %v, want none from an interrupted run", health)
		}
		if h.m.Healthy() {
			t.Error("Healthy() = true after an interrupted run")
		}
		if err := h.m.Run(context.Background()); err == nil {
			t.Error("second Run() = nil, want an error")
		}
	})
}

func TestSetInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(fail, fail, fail, fail, fail, fail)
		h := start(t, Config{Runner: f}, true)
		h.m.SetInterval(4 * time.Second)
		time.Sleep(17 * time.Second)
		h.stop(t)
		// 2, then 2, 4, 4, 4 (capped at the new interval).
		if diff := cmp.Diff(secs(2, 4, 8, 12, 16), f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestSetIntervalAtOnce: lowering MonitorInterval while a 15 s wait is
// pending (ctdb setvar MonitorInterval 3) brings the next run within the
// new interval, not after the old wait.
func TestSetIntervalAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		h := start(t, Config{Runner: f}, true)
		// Runs at 2 (the first pass is a change: next in 5 s), 7, then
		// 17 with MonitorInterval 15.
		time.Sleep(10 * time.Second)
		h.m.SetInterval(3 * time.Second) // at 10 s, the next run was due at 17 s
		time.Sleep(6500 * time.Millisecond)
		h.stop(t)
		if diff := cmp.Diff(secs(2, 7, 13, 16), f.Runs()); diff != "" {
			t.Errorf("run times mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestNewChecks(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New() without a Runner = nil error")
	}
	if _, err := New(Config{Runner: newFake(), Interval: -time.Second}); err == nil {
		t.Error("New() with a negative interval = nil error")
	}
}
