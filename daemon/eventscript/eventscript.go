package eventscript

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout   = 30 * time.Second // CTDB's EventScriptTimeout
	DefaultOutputCap = 64 << 10
	DefaultKillGrace = 500 * time.Millisecond
)

// debugScriptTimeout bounds the debug script; the hung script keeps
// running (and its event keeps waiting) meanwhile.
const debugScriptTimeout = 10 * time.Second

// outputLinger is how long output is still read after a script exited, for
// processes it left behind holding the pipe. Everything the script wrote
// before exiting is already in the pipe and is read without waiting.
const outputLinger = 100 * time.Millisecond

// ResultStore keeps the last result of each event across restarts;
// *state.Store is one. EventResult returns nil, nil when there is none.
type ResultStore interface {
	PutEventResult(event string, data []byte) error
	EventResult(event string) ([]byte, error)
}

// Config configures a Runner.
type Config struct {
	// Dir is the events dir (events.d). Required; it must exist.
	Dir string
	// Base is CTDB_BASE, the config dir; "" means Dir's parent.
	Base string
	// Env is added to ctdbd's environment for every script ("KEY=value").
	Env []string
	// Timeout is the deadline of a whole event (all its scripts); 0 means
	// DefaultTimeout (EventScriptTimeout), negative means none.
	Timeout time.Duration
	// OutputCap is how many bytes of output are kept per script (the
	// tail); 0 means DefaultOutputCap.
	OutputCap int
	// KillGrace is how long a timed-out script's process group has between
	// SIGTERM and SIGKILL; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// DebugScript, if set, runs as `DebugScript PID EVENT` when a script
	// times out, before it is killed (ctdb.conf [event] debug script).
	DebugScript string
	// Reaper is how the processes a script leaves behind are found and
	// killed when it ends; ReaperAuto (the zero value) means a freezer
	// cgroup when one can be made, else the environment mark. ReaperCgroup
	// makes New fail when no cgroup can be made.
	Reaper Reaper
	// CgroupRoot is the cgroup v1 freezer hierarchy for ReaperCgroup; ""
	// means DefaultCgroupRoot. The run cgroups go in ctdb-go/PID-N under
	// ctdbd's own cgroup there.
	CgroupRoot string
	// Store keeps the last result of each event; nil keeps them in memory.
	Store ResultStore
	// Logger; nil discards.
	Logger *slog.Logger
}

// Runner runs events. It is safe for concurrent use: see the package doc
// for which events run in parallel.
type Runner struct {
	dir, base   string
	env         []string
	outputCap   int
	killGrace   time.Duration
	debugScript string
	store       ResultStore
	log         *slog.Logger
	reap        *reaper

	// mu guards the fields below it.
	mu      sync.Mutex
	timeout time.Duration
	others  int         // non-monitor events running
	monitor *monitorRun // the running monitor, nil if none
	last    map[string]Result

	// Results reach the Store in the background: a takeover run ends
	// hundreds of takeip/releaseip events at once, and a commit (two
	// fsyncs) each, in line, would serialise them. Only the newest result
	// of each event is kept, so a burst costs a few commits, not one per
	// event. pending is what the writer has still to store; writing says
	// a writer goroutine runs; stored is signalled when it stops.
	pending map[string]Result
	writing bool
	stored  *sync.Cond
}

// monitorRun is a running monitor event that other events may cancel.
type monitorRun struct {
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the run has ended and its scripts are dead
}

// errPreempted is the cause of a monitor cancelled by another event.
var errPreempted = errors.New("cancelled by another event")

// New checks cfg and fills its defaults. It starts nothing.
func New(cfg Config) (*Runner, error) {
	if cfg.Dir == "" {
		return nil, errors.New("eventscript: no events dir")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving events dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking events dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("checking events dir: %s is not a directory", dir)
	}
	base := cfg.Base
	if base == "" {
		base = filepath.Dir(dir)
	}
	if base, err = filepath.Abs(base); err != nil {
		return nil, fmt.Errorf("resolving CTDB_BASE: %w", err)
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("eventscript: environment entry %q is not KEY=value", kv)
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.OutputCap == 0 {
		cfg.OutputCap = DefaultOutputCap
	}
	if cfg.OutputCap < 0 {
		return nil, fmt.Errorf("eventscript: negative output cap %d", cfg.OutputCap)
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("component", "eventscript")
	reap, mode, err := newReaper(cfg.Reaper, cfg.CgroupRoot)
	switch {
	case reap == nil:
		return nil, fmt.Errorf("eventscript: reaper %v: %w", cfg.Reaper, err)
	case err != nil:
		log.Info("left-behind script processes found by their environment", "reaper", mode, "why_not_cgroup", err)
	default:
		log.Debug("left-behind script processes found by", "reaper", mode)
	}
	// Later entries win in exec, so CTDB_BASE overrides Env and Env
	// overrides ctdbd's own environment.
	env := append(os.Environ(), cfg.Env...)
	env = append(env, "CTDB_BASE="+base)
	r := &Runner{
		dir:         dir,
		base:        base,
		env:         env,
		outputCap:   cfg.OutputCap,
		killGrace:   cfg.KillGrace,
		debugScript: cfg.DebugScript,
		store:       cfg.Store,
		log:         log,
		reap:        reap,
		timeout:     cfg.Timeout,
		last:        make(map[string]Result),
		pending:     make(map[string]Result),
	}
	r.stored = sync.NewCond(&r.mu)
	return r, nil
}

// Close removes the run cgroups the Runner made. Call it when no event
// runs any more; it is a no-op with ReaperEnv.
func (r *Runner) Close() {
	r.reap.close()
}

// Reaper returns the mechanism in use (never ReaperAuto).
func (r *Runner) Reaper() Reaper {
	if r.reap.pool != nil {
		return ReaperCgroup
	}
	return ReaperEnv
}

// SetTimeout changes the event timeout for runs started later (`ctdb
// setvar EventScriptTimeout`); d <= 0 means none.
func (r *Runner) SetTimeout(d time.Duration) {
	r.mu.Lock()
	r.timeout = d
	r.mu.Unlock()
}

// Run runs event with args under the configured timeout. See the package
// doc for the contract.
func (r *Runner) Run(ctx context.Context, event string, args ...string) Result {
	r.mu.Lock()
	timeout := r.timeout
	r.mu.Unlock()
	return r.RunTimeout(ctx, timeout, event, args...)
}

// RunTimeout is Run with an explicit event timeout (`ctdb event run
// TIMEOUT`); timeout <= 0 means none (ctx may still have a deadline).
func (r *Runner) RunTimeout(ctx context.Context, timeout time.Duration, event string, args ...string) Result {
	res := Result{Event: event, Args: slices.Clone(args), Start: time.Now(), Scripts: []ScriptResult{}}
	if err := checkEvent(event, args); err != nil {
		res.Status, res.Err, res.ErrCode = StatusFailed, err.Error(), int(syscall.EINVAL)
		return res
	}
	log := r.log.With("event", event)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if event == "monitor" {
		run := &monitorRun{cancel: cancel, done: make(chan struct{})}
		r.mu.Lock()
		busy := r.others > 0 || r.monitor != nil
		if !busy {
			r.monitor = run
		}
		r.mu.Unlock()
		if busy {
			res.Status, res.Err = StatusCancelled, "another event is running"
			log.Debug("monitor event cancelled: another event is running")
			return res
		}
		defer func() {
			r.mu.Lock()
			r.monitor = nil
			r.mu.Unlock()
			close(run.done)
		}()
	} else {
		r.mu.Lock()
		r.others++
		running := r.monitor
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.others--
			r.mu.Unlock()
		}()
		if running != nil {
			running.cancel(errPreempted)
			// Wait for its scripts to be killed (milliseconds) so the two
			// events' scripts do not overlap.
			select {
			case <-running.done:
			case <-ctx.Done():
			}
		}
	}
	if timeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, timeout)
		defer cancelT()
	}

	r.runScripts(ctx, &res, timeout, log)
	res.Duration = time.Since(res.Start)

	switch res.Status {
	case StatusOK:
		log.Debug("event done", "took", res.Duration)
	case StatusCancelled:
		log.Info("event cancelled", "reason", res.Err, "took", res.Duration)
	default:
		if res.Err != "" { // no script to blame (events dir unreadable)
			log.Warn("event failed", "status", res.Status, "summary", res.Summary(), "err", res.Err)
		} else { // the failing script was logged with its output
			log.Debug("event failed", "status", res.Status, "summary", res.Summary(), "took", res.Duration)
		}
	}
	if res.Status != StatusCancelled {
		r.record(res)
	}
	return res
}

// runScripts fills res.Scripts and res.Status.
func (r *Runner) runScripts(ctx context.Context, res *Result, timeout time.Duration, log *slog.Logger) {
	scripts, err := r.list()
	if err != nil {
		res.Status, res.Err, res.ErrCode = StatusFailed, err.Error(), errnoOf(err, syscall.EIO)
		return
	}
	res.Status = StatusOK
	for _, s := range scripts {
		if !s.enabled {
			res.Scripts = append(res.Scripts, ScriptResult{Name: s.name, State: ScriptDisabled})
			continue
		}
		sr := r.runScript(ctx, s, res.Event, res.Args, log.With("script", s.name))
		res.Scripts = append(res.Scripts, sr)
		if timeout > 0 && sr.Duration > timeout/2 && sr.State != ScriptTimedOut {
			log.Warn("slow event script", "script", s.name, "took", sr.Duration, "timeout", timeout)
		}
		switch sr.State {
		case ScriptOK:
			continue
		case ScriptTimedOut:
			res.Status = StatusTimedOut
		case ScriptCancelled:
			res.Status, res.Err = StatusCancelled, cancelReason(ctx)
		default:
			res.Status = StatusFailed
		}
		return
	}
}

// cancelReason says why ctx was cancelled.
func cancelReason(ctx context.Context) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	return "cancelled by the caller"
}

// eventArgs are the argument counts of the events that take arguments or
// that CTDB knows; other event names are passed through.
var eventArgs = map[string]int{
	"init": 0, "setup": 0, "startup": 0, "monitor": 0,
	"startrecovery": 0, "recovered": 0, "startipreallocate": 0,
	"ipreallocated": 0, "shutdown": 0,
	"takeip": 3, "releaseip": 3, "updateip": 4,
	"fence": 2, // ctdb-go: PNN ADDRESS
}

func checkEvent(event string, args []string) error {
	if event == "" || strings.ContainsAny(event, "/ \t\n") {
		return fmt.Errorf("invalid event name %q", event)
	}
	if n, ok := eventArgs[event]; ok && len(args) != n {
		return fmt.Errorf("event %s takes %d arguments, got %d", event, n, len(args))
	}
	return nil
}

// record keeps res as event's last result, in memory at once and in the
// Store soon after (see Flush).
func (r *Runner) record(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[res.Event] = res
	if r.store == nil {
		return
	}
	r.pending[res.Event] = res
	if !r.writing {
		r.writing = true
		go r.writeResults()
	}
}

// resultStoreGap is the least time between two writes of results to the
// Store: results coming faster are coalesced, the newest of each event
// kept.
const resultStoreGap = 100 * time.Millisecond

// writeResults stores pending results until none are left.
func (r *Runner) writeResults() {
	r.mu.Lock()
	for len(r.pending) > 0 {
		batch := r.pending
		r.pending = make(map[string]Result)
		r.mu.Unlock()
		for event, res := range batch {
			data, err := json.Marshal(res)
			if err == nil {
				err = r.store.PutEventResult(event, data)
			}
			if err != nil {
				r.log.Warn("event result not stored", "event", event, "err", err)
			}
		}
		time.Sleep(resultStoreGap)
		r.mu.Lock()
	}
	r.writing = false
	r.stored.Broadcast()
	r.mu.Unlock()
}

// Flush waits until every result recorded so far is in the Store (up to
// resultStoreGap after the last write). Call it before closing the Store.
func (r *Runner) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.writing {
		r.stored.Wait()
	}
}

// Status returns the last completed (not cancelled) run of event, from
// memory or the Store; false when it never ran.
func (r *Runner) Status(event string) (Result, bool) {
	r.mu.Lock()
	res, ok := r.last[event]
	r.mu.Unlock()
	if ok || r.store == nil {
		return res, ok
	}
	data, err := r.store.EventResult(event)
	if err != nil {
		r.log.Warn("event result not read", "event", event, "err", err)
		return Result{}, false
	}
	if data == nil {
		return Result{}, false
	}
	if err := json.Unmarshal(data, &res); err != nil {
		r.log.Warn("stored event result unreadable", "event", event, "err", err)
		return Result{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.last[event]; ok { // a run finished meanwhile
		return cur, true
	}
	r.last[event] = res
	return res, true
}
