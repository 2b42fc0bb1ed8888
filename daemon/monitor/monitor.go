// Package monitor is the monitor scheduler: it runs the `monitor` event on
// CTDB's adaptive schedule, or at once when asked (a link went down), and
// owns the node's health as the monitor event decides it. The daemon turns
// a change of health into the UNHEALTHY flag and tells the leader.
//
// Schedule (CTDB's server/ctdb_monitor.c): the first monitor runs 2 s
// after Run starts (Run is called once `startup` has succeeded); after
// each run the next waits the current interval, which then doubles, up to
// Interval (MonitorInterval). A change of health resets the interval to
// 5 s first. So without changes: 2, 2, 4, 8, 15, 15… s; after a change:
// 5, 10, 15… s. A fresh node starts unhealthy, so its first passing run is
// a change.
//
// Results: a passing run makes the node healthy and a failing one
// unhealthy. A timed-out run is counted; below TimeoutCount
// (MonitorTimeoutCount) consecutive timeouts it changes nothing, from
// TimeoutCount on it is a failure; any other result clears the count. A
// cancelled run (preempted by another event) changes nothing. (CTDB takes a
// timeout below the count as a pass, which can make an unhealthy node
// healthy; ctdb-go does not.)
//
// Pausing: Config.CanRun, when set, is asked before every run; while it
// says no (the node is STOPPED or BANNED, as CTDB skips monitoring of an
// INACTIVE node) the run is skipped and, for a scheduled run, the next is
// scheduled after the current interval without doubling. Call Trigger when
// the node becomes runnable again to monitor at once.
package monitor

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

// Schedule constants from CTDB's server/ctdb_monitor.c.
const (
	firstInterval  = 2 * time.Second // after startup
	changeInterval = 5 * time.Second // after a health change
)

// Defaults for Config's zero values.
const (
	DefaultInterval     = 15 * time.Second // MonitorInterval
	DefaultTimeoutCount = 20               // MonitorTimeoutCount
	DefaultDebounce     = 5 * time.Millisecond
)

// Runner runs an event; *eventscript.Runner is one.
type Runner interface {
	Run(ctx context.Context, event string, args ...string) eventscript.Result
}

// Clock is the monitor's source of timers; nil in Config means real time.
// Tests may use testing/synctest with the real clock instead.
type Clock interface {
	NewTimer(d time.Duration) Timer
	Now() time.Time
}

// Timer is what the monitor needs of a timer; time.Timer's semantics
// (Go 1.23+: Reset and Stop leave no stale value in C).
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Config configures a Monitor.
type Config struct {
	// Runner runs the monitor event. Required.
	Runner Runner
	// Interval is the longest wait between runs (MonitorInterval); 0 means
	// DefaultInterval.
	Interval time.Duration
	// TimeoutCount is how many consecutive timed-out runs make the node
	// unhealthy (MonitorTimeoutCount); 0 means DefaultTimeoutCount.
	TimeoutCount int
	// Debounce is how long Trigger waits for more triggers before it runs
	// the event; 0 means DefaultDebounce.
	Debounce time.Duration
	// First is the wait before the first run; 0 means CTDB's 2 s. Tests
	// of the daemon shorten it.
	First time.Duration
	// CanRun, if set, is asked before each run; false skips it (see the
	// package doc). It must not block.
	CanRun func() bool
	// Clock; nil means real time.
	Clock Clock
	// Logger; nil discards.
	Logger *slog.Logger
}

// Monitor schedules the monitor event and keeps the node's health.
type Monitor struct {
	runner   Runner
	debounce time.Duration
	first    time.Duration // before the first run
	canRun   func() bool
	clock    Clock
	log      *slog.Logger

	interval     atomic.Int64 // time.Duration; SetInterval
	timeoutCount atomic.Int64 // SetTimeoutCount
	healthy      atomic.Bool
	started      atomic.Bool

	// trigger holds at most one pending trigger's reason: Trigger never
	// blocks, and triggers that find one pending are merged into it.
	trigger chan string
	// health holds the latest unread change; only Run sends.
	health chan bool
	// retime tells Run that the interval changed (capacity 1).
	retime chan struct{}
}

// New checks cfg and fills its defaults. It starts nothing.
func New(cfg Config) (*Monitor, error) {
	if cfg.Runner == nil {
		return nil, errors.New("monitor: no runner")
	}
	if cfg.Interval < 0 || cfg.TimeoutCount < 0 || cfg.Debounce < 0 {
		return nil, errors.New("monitor: negative interval, timeout count or debounce")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TimeoutCount == 0 {
		cfg.TimeoutCount = DefaultTimeoutCount
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.First <= 0 {
		cfg.First = firstInterval
	}
	if cfg.CanRun == nil {
		cfg.CanRun = func() bool { return true }
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{
		runner:   cfg.Runner,
		debounce: cfg.Debounce,
		first:    cfg.First,
		canRun:   cfg.CanRun,
		clock:    cfg.Clock,
		log:      cfg.Logger.With("component", "monitor"),
		trigger:  make(chan string, 1),
		health:   make(chan bool, 1),
		retime:   make(chan struct{}, 1),
	}
	m.interval.Store(int64(cfg.Interval))
	m.timeoutCount.Store(int64(cfg.TimeoutCount))
	return m, nil
}

// SetInterval changes MonitorInterval at once (`ctdb setvar
// MonitorInterval`): a run already scheduled further out than the new
// interval comes within it; d <= 0 is ignored.
func (m *Monitor) SetInterval(d time.Duration) {
	if d > 0 {
		m.interval.Store(int64(d))
		select {
		case m.retime <- struct{}{}:
		default:
		}
	}
}

// SetTimeoutCount changes MonitorTimeoutCount; n <= 0 is ignored.
func (m *Monitor) SetTimeoutCount(n int) {
	if n > 0 {
		m.timeoutCount.Store(int64(n))
	}
}

// Healthy reports the node's current health; false until a run passes.
func (m *Monitor) Healthy() bool { return m.healthy.Load() }

// Health delivers each change of health (the node starts unhealthy, which
// is not delivered). The channel holds only the latest change: a reader
// that falls behind gets the newest value and misses the flips between,
// and the monitor never waits for it. There should be one reader. It is
// closed when Run returns.
func (m *Monitor) Health() <-chan bool { return m.health }

// Trigger asks for a monitor run now, e.g. because a link changed. Triggers
// within Debounce make one run; a trigger during a run makes one more run
// right after it. It never blocks.
func (m *Monitor) Trigger(reason string) {
	select {
	case m.trigger <- reason:
		m.log.Debug("monitor triggered", "reason", reason)
	default:
		m.log.Debug("monitor triggered; merged with a pending trigger", "reason", reason)
	}
}

// Run schedules monitor runs until ctx ends, then returns nil. Call it
// once, after the startup event has succeeded.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("monitor: Run called twice")
	}
	defer close(m.health)

	s := loop{m: m, cur: m.first}
	s.timer = m.clock.NewTimer(m.first)
	s.due = m.clock.Now().Add(m.first)
	defer s.timer.Stop()
	var debounce Timer
	var debounceC <-chan time.Time // nil while no trigger is waiting
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case reason := <-m.trigger:
			if debounceC != nil {
				continue // already waiting; this one joins it
			}
			if debounce == nil {
				debounce = m.clock.NewTimer(m.debounce)
			} else {
				debounce.Reset(m.debounce)
			}
			debounceC = debounce.C()
			s.reason = reason
		case <-debounceC:
			debounceC = nil
			s.run(ctx, false)
		case <-m.retime:
			longest := time.Duration(m.interval.Load())
			s.cur = min(s.cur, longest)
			if s.due.Sub(m.clock.Now()) > longest {
				s.schedule(longest)
			}
		case <-s.timer.C():
			if debounceC != nil {
				// This run serves the waiting trigger too.
				debounce.Stop()
				debounceC = nil
			}
			s.run(ctx, true)
		}
	}
}

// cancelRetry is how soon a cancelled monitor runs again.
const cancelRetry = 100 * time.Millisecond

// loop is Run's state; only Run's goroutine touches it.
type loop struct {
	m        *Monitor
	timer    Timer
	due      time.Time     // when timer fires
	cur      time.Duration // CTDB's next_interval
	timeouts int           // consecutive timed-out runs
	reason   string        // of the pending trigger
}

// run runs the monitor event once, unless CanRun says no, and schedules
// the next run.
func (s *loop) run(ctx context.Context, scheduled bool) {
	m := s.m
	longest := time.Duration(m.interval.Load())
	if !m.canRun() {
		if scheduled {
			s.schedule(min(s.cur, longest))
		}
		m.log.Debug("monitoring skipped: node may not run it")
		return
	}
	why := "scheduled"
	if !scheduled {
		why = "triggered: " + s.reason
	}
	res := m.runner.Run(ctx, "monitor")
	if ctx.Err() != nil {
		return // shutting down
	}

	was := m.healthy.Load()
	healthy, timeouts := judge(was, res.Status, s.timeouts, int(m.timeoutCount.Load()))
	s.timeouts = timeouts
	changed := healthy != was
	switch {
	case res.Status == eventscript.StatusCancelled:
		// A takeover event preempted it. Try again shortly rather than a
		// whole interval later: a run triggered by a link change must not
		// be lost to the releases that change started.
		m.log.Debug("monitoring event was cancelled; retrying", "why", why)
		s.schedule(cancelRetry)
		return
	case res.Status == eventscript.StatusTimedOut:
		m.log.Warn("monitor event timed out", "timeouts", timeouts, "limit", m.timeoutCount.Load(), "why", why)
	}
	if changed {
		m.healthy.Store(healthy)
		m.publish(healthy)
		if healthy {
			m.log.Info("monitor event OK - node re-enabled", "why", why, "took", res.Duration)
		} else {
			m.log.Info("monitor event failed - disabling node", "why", why, "status", res.Status,
				"summary", res.Summary(), "script", failing(res), "timeouts", timeouts)
		}
	}
	var delay time.Duration
	delay, s.cur = next(s.cur, changed, longest)
	s.schedule(delay)
}

// schedule sets the next scheduled run d from now.
func (s *loop) schedule(d time.Duration) {
	s.timer.Stop()
	s.timer.Reset(d)
	s.due = s.m.clock.Now().Add(d)
}

// publish replaces any unread health value with v. Only Run calls it, so
// after the drain there is room and the send cannot block.
func (m *Monitor) publish(v bool) {
	select {
	case <-m.health:
	default:
	}
	m.health <- v
}

// failing names the script that failed the run, for the log.
func failing(res eventscript.Result) string {
	if n := len(res.Scripts); n > 0 {
		return res.Scripts[n-1].Name
	}
	return res.Err
}

// next is the schedule: given the current interval cur (CTDB's
// next_interval), whether health just changed and MonitorInterval longest,
// it returns the delay before the next run and the interval to keep for
// the one after.
func next(cur time.Duration, changed bool, longest time.Duration) (delay, following time.Duration) {
	if changed {
		cur = changeInterval
	}
	return min(cur, longest), min(2*cur, longest)
}

// judge applies one monitor result to the health: it returns the new
// health and the new count of consecutive timeouts, limit being
// MonitorTimeoutCount.
func judge(healthy bool, status eventscript.Status, timeouts, limit int) (bool, int) {
	switch status {
	case eventscript.StatusOK:
		return true, 0
	case eventscript.StatusCancelled:
		return healthy, timeouts
	case eventscript.StatusTimedOut:
		timeouts++
		if timeouts < limit {
			return healthy, timeouts
		}
		return false, timeouts
	default:
		return false, 0
	}
}

// realClock is Clock on the time package.
type realClock struct{}

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
func (realClock) Now() time.Time                 { return time.Now() }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
