package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "runstate",
		usage:   "runstate [setup|first_recovery|startup|running]...",
		summary: "show the run state; with states, fail unless it is one of them",
		multi:   true,
		run:     runRunState,
	})
}

// runStates are CTDB's run states by name (protocol/protocol_util.c).
var runStates = []string{"UNKNOWN", "INIT", "SETUP", "FIRST_RECOVERY", "STARTUP", "RUNNING", "SHUTDOWN"}

func runRunState(e *env, args []string) int {
	var rs control.RunState
	code, ok := e.query(control.Request{Command: control.CmdRunState}, &rs)
	if !ok || e.json {
		return code
	}
	state := strings.ToUpper(rs.State)
	found := true
	for _, a := range args {
		found = false
		want := strings.ToUpper(a)
		if want == "UNKNOWN" || !slices.Contains(runStates, want) {
			fmt.Fprintf(e.stdout, "Invalid run state (%s)\n", a)
			return 1
		}
		if want == state {
			found = true
			break
		}
	}
	if !found {
		fmt.Fprintf(e.stdout, "CTDB not in required run state (got %s)\n", state)
		return 1
	}
	fmt.Fprintln(e.stdout, state)
	return code
}
