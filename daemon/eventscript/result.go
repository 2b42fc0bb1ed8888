package eventscript

import (
	"syscall"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// Status is how an event run ended.
type Status string

const (
	StatusOK        Status = "OK"        // every enabled script exited 0
	StatusFailed    Status = "FAILED"    // a script failed or could not run, or the event could not start
	StatusTimedOut  Status = "TIMEDOUT"  // the event's deadline passed
	StatusCancelled Status = "CANCELLED" // preempted or the caller cancelled; never recorded
)

// State is one script's result, with CTDB's words.
type State string

const (
	ScriptOK        State = "OK"
	ScriptError     State = "ERROR"      // non-zero exit or killed by a signal
	ScriptTimedOut  State = "TIMEDOUT"   // running when the event's deadline passed
	ScriptDisabled  State = "DISABLED"   // not executable: skipped
	ScriptCannotRun State = "CANNOT RUN" // execve failed; Err says why
	ScriptCancelled State = "CANCELLED"  // running when the event was cancelled
)

// Summary codes, as CTDB's CLI exits with them.
const (
	codeTimedOut  = int(syscall.ETIMEDOUT) // 110
	codeCancelled = int(syscall.ECANCELED) // 125
)

// ScriptResult is one script's part of an event run.
type ScriptResult struct {
	Name  string `json:"name"` // without ".script"
	State State  `json:"state"`
	// ExitCode is the exit status (ERROR), 128+signal (killed), the errno
	// (CANNOT RUN) or 110 (TIMEDOUT); 0 otherwise.
	ExitCode int           `json:"exit_code"`
	Start    time.Time     `json:"start,omitzero"`
	Duration time.Duration `json:"duration"`
	// Output is the tail of stdout and stderr together, at most OutputCap
	// bytes; Truncated says earlier output was dropped.
	Output    string `json:"output,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Err explains a state the exit code does not: the system's message
	// for CANNOT RUN, the signal, the timeout.
	Err string `json:"err,omitempty"`
}

// Result is one run of an event.
type Result struct {
	Event    string        `json:"event"`
	Args     []string      `json:"args,omitempty"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	// Scripts are in run order, up to and including the first one that did
	// not succeed; disabled ones are included as DISABLED.
	Scripts []ScriptResult `json:"scripts"`
	Status  Status         `json:"status"`
	// Err and ErrCode say why the event failed or was cancelled before or
	// between scripts (bad arguments: EINVAL; events dir unreadable: its
	// errno; preempted). Empty when a script's result says it.
	Err     string `json:"err,omitempty"`
	ErrCode int    `json:"err_code,omitempty"`
}

// OK reports whether the event succeeded.
func (r Result) OK() bool { return r.Status == StatusOK }

// Summary is the event's result code as CTDB reports it: 0 for success,
// 110 for a timeout, 125 for a cancelled run, else the failing script's
// exit code (its errno for CANNOT RUN), or ErrCode when no script failed.
func (r Result) Summary() int {
	switch r.Status {
	case StatusOK:
		return 0
	case StatusTimedOut:
		return codeTimedOut
	case StatusCancelled:
		return codeCancelled
	}
	if n := len(r.Scripts); n > 0 && r.Scripts[n-1].ExitCode != 0 {
		return r.Scripts[n-1].ExitCode
	}
	if r.ErrCode != 0 {
		return r.ErrCode
	}
	return 1
}

// Control converts r to the control API's `ctdb event status` form.
func (r Result) Control() control.EventStatus {
	es := control.EventStatus{
		Event:   r.Event,
		Scripts: make([]control.ScriptStatus, 0, len(r.Scripts)),
		Summary: r.Summary(),
	}
	for _, s := range r.Scripts {
		es.Scripts = append(es.Scripts, control.ScriptStatus{
			Name:     s.Name,
			State:    string(s.State),
			ExitCode: s.ExitCode,
			Start:    s.Start,
			Duration: s.Duration,
			Output:   s.Output,
			Err:      s.Err,
		})
	}
	return es
}
