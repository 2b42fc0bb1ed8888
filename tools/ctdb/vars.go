package main

import (
	"fmt"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "listvars",
		usage:   "listvars",
		summary: "list the tunables and their values",
		multi:   true,
		run:     runListVars,
	})
	register(&command{
		name:    "getvar",
		usage:   "getvar NAME",
		summary: "show one tunable (names are case-insensitive)",
		multi:   true,
		run:     runGetVar,
	})
	register(&command{
		name:    "setvar",
		usage:   "setvar NAME VALUE",
		summary: "set a tunable at once, until ctdbd restarts (memberlist timings, LinkDebounceMs: read at start, refused)",
		multi:   true,
		run:     runSetVar,
	})
}

// tunableLine is CTDB's "%-26s = %u".
func tunableLine(name string, v uint32) string {
	return fmt.Sprintf("%-26s = %d", name, v)
}

func runListVars(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("listvars")
	}
	var ts []control.Tunable
	code, ok := e.query(control.Request{Command: control.CmdListVars}, &ts)
	if !ok || e.json {
		return code
	}
	for _, t := range ts {
		fmt.Fprintln(e.stdout, tunableLine(t.Name, t.Value))
	}
	return code
}

func runGetVar(e *env, args []string) int {
	if len(args) != 1 {
		return e.usage("getvar")
	}
	var t control.Tunable
	code, ok := e.query(control.Request{Command: control.CmdGetVar, Args: args}, &t)
	if !ok || e.json {
		return code
	}
	// The name as the user typed it, as CTDB prints it.
	fmt.Fprintln(e.stdout, tunableLine(args[0], t.Value))
	return code
}

func runSetVar(e *env, args []string) int {
	if len(args) != 2 {
		return e.usage("setvar")
	}
	// strtoul(…, 0) as CTDB: decimal, 0x hex or 0 octal.
	v, err := strconv.ParseUint(args[1], 0, 32)
	if err != nil {
		fmt.Fprintf(e.stderr, "ctdb: invalid value %q for %s: want a number from 0 to %d\n", args[1], args[0], uint32(1<<32-1))
		return 22
	}
	return e.act(control.Request{Command: control.CmdSetVar, Args: []string{args[0], strconv.FormatUint(v, 10)}})
}
