package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name: "event",
		usage: "event status [legacy] [EVENT]\n" +
			"event run [TIMEOUT] [legacy] EVENT [ARGS...]\n" +
			"event script list [legacy]\n" +
			"event script enable|disable [legacy] SCRIPT",
		summary: "show the last run of an event (default monitor), run one, list or flip scripts",
		multi:   true,
		run:     runEvent,
	})
}

// component is CTDB's only event component; CTDB requires the word, ctdb-go
// takes it or leaves it.
const component = "legacy"

func runEvent(e *env, args []string) int {
	if len(args) == 0 {
		return e.usage("event")
	}
	switch args[0] {
	case "status":
		return eventStatus(e, args[1:], "event")
	case "run":
		return eventRun(e, args[1:])
	case "script":
		if len(args) < 2 {
			return e.usage("event")
		}
		switch args[1] {
		case "list":
			return eventScriptList(e, args[2:])
		case "enable", "disable":
			return eventScriptFlip(e, args[1], args[2:])
		}
	}
	return e.usage("event")
}

// stripComponent takes CTDB's component word off the front of args, which
// must then hold at most max words. A component other than legacy is
// answered as CTDB answers it.
func stripComponent(e *env, args []string, max int, usage string) ([]string, int, bool) {
	if len(args) > 0 && args[0] == component {
		args = args[1:]
	} else if len(args) == max+1 {
		fmt.Fprintf(e.stdout, "Event dir for %s does not exist\n", args[0])
		return nil, 2, false // ENOENT
	}
	if len(args) > max {
		return nil, e.usage(usage), false
	}
	return args, 0, true
}

// eventStatus is `ctdb event status [legacy] EVENT`, also `scriptstatus`.
// The exit code is the event's summary: 0, the failing script's code, or
// 110 for a timeout; "Event X has never run" comes from the daemon as an
// error with code 22.
func eventStatus(e *env, args []string, usage string) int {
	args, code, ok := stripComponent(e, args, 1, usage)
	if !ok {
		return code
	}
	event := "monitor"
	if len(args) == 1 {
		event = args[0]
	}
	var st control.EventStatus
	code, ok = e.query(control.Request{Command: control.CmdEvent, Args: []string{"status", event}}, &st)
	if !ok {
		return code
	}
	if !e.json {
		writeEventStatus(e, st)
	}
	if st.Summary != 0 {
		return abs(st.Summary)
	}
	return code
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// writeEventStatus prints CTDB's per-script lines:
//
//	10.interface         ERROR      0.043 Mon Nov 23 18:28:31 2026
//	  OUTPUT: ERROR: No link on the public network interface eth0
func writeEventStatus(e *env, st control.EventStatus) {
	w := e.stdout
	for _, s := range st.Scripts {
		switch s.State {
		case "TIMEDOUT":
			fmt.Fprintf(w, "%-20s %-10s %s\n", s.Name, s.State, e.ctime(s.Start))
		case "DISABLED":
			fmt.Fprintf(w, "%-20s %-10s\n", s.Name, s.State)
			continue // never any output
		case "CANNOT RUN":
			fmt.Fprintf(w, "%-20s %-10s (%s)\n", s.Name, s.State, s.Err)
		default: // OK, ERROR
			fmt.Fprintf(w, "%-20s %-10s %.3f %s\n", s.Name, s.State, s.Duration.Seconds(), e.ctime(s.Start))
		}
		if s.State == "OK" && s.Output == "" {
			continue
		}
		writeOutput(e, s.Output)
	}
}

// writeOutput prints a script's captured output. One line is printed as
// CTDB 4.17 prints it, "  OUTPUT: text", followed by the blank line its
// trailing newline makes; several lines as newer CTDB does, each indented
// under "  OUTPUT:". A failure with no output still gets "  OUTPUT: ".
func writeOutput(e *env, out string) {
	text := strings.TrimRight(out, "\n")
	if !strings.Contains(text, "\n") {
		fmt.Fprintf(e.stdout, "  OUTPUT: %s\n", text)
		if text != out {
			fmt.Fprintln(e.stdout)
		}
		return
	}
	fmt.Fprintln(e.stdout, "  OUTPUT:")
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			fmt.Fprintln(e.stdout) // blank lines kept, without trailing blanks
			continue
		}
		fmt.Fprintf(e.stdout, "    %s\n", l)
	}
}

// eventRun is `ctdb event run [TIMEOUT] [legacy] EVENT [ARGS...]`. It
// prints nothing when the event succeeds and CTDB's one line when it does
// not, exiting 8 (failed), 110 (timed out) or 125 (cancelled); -v also
// prints the scripts' status.
func eventRun(e *env, args []string) int {
	var timeout time.Duration
	if len(args) > 0 {
		if n, err := strconv.ParseUint(args[0], 10, 32); err == nil {
			timeout = time.Duration(n) * time.Second
			args = args[1:]
		}
	}
	if len(args) > 0 && args[0] == component {
		args = args[1:]
	}
	if len(args) == 0 {
		return e.usage("event")
	}
	event := args[0]
	// Running an event takes as long as its scripts: up to -T.
	e.callTimeout = e.maxRuntime
	var st control.EventStatus
	code, ok := e.query(control.Request{
		Command:      control.CmdEvent,
		Args:         append([]string{"run"}, args...),
		EventTimeout: timeout,
	}, &st)
	if !ok || e.json {
		if ok && st.Summary != 0 {
			return runExit(st.Summary)
		}
		return code
	}
	if e.verbose {
		writeEventStatus(e, st)
	}
	switch runExit(st.Summary) {
	case 0:
		return code
	case 110:
		fmt.Fprintf(e.stdout, "Event %s in %s timed out\n", event, component)
	case 125:
		fmt.Fprintf(e.stdout, "Event %s in %s got cancelled\n", event, component)
	default:
		fmt.Fprintf(e.stdout, "Event %s in %s failed\n", event, component)
	}
	return runExit(st.Summary)
}

// runExit maps an event's summary to `ctdb event run`'s exit code:
// ETIMEDOUT and ECANCELED as they are, any other failure ENOEXEC (8).
func runExit(summary int) int {
	switch s := abs(summary); s {
	case 0, 110, 125:
		return s
	}
	return 8
}

// eventScriptList prints "* NAME" for an enabled script, "  NAME" for a
// disabled one, in run order.
func eventScriptList(e *env, args []string) int {
	if _, code, ok := stripComponent(e, args, 0, "event"); !ok {
		return code
	}
	var scripts []control.Script
	code, ok := e.query(control.Request{Command: control.CmdEvent, Args: []string{"script", "list"}}, &scripts)
	if !ok || e.json {
		return code
	}
	for _, s := range scripts {
		mark := ' '
		if s.Enabled {
			mark = '*'
		}
		fmt.Fprintf(e.stdout, "%c %s\n", mark, s.Name)
	}
	return code
}

func eventScriptFlip(e *env, verb string, args []string) int {
	args, code, ok := stripComponent(e, args, 1, "event")
	if !ok {
		return code
	}
	if len(args) != 1 {
		return e.usage("event")
	}
	return e.act(control.Request{Command: control.CmdEvent, Args: []string{"script", verb, args[0]}})
}
