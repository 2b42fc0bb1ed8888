package main

import (
	"fmt"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "leader",
		aliases: []string{"recmaster"},
		usage:   "leader",
		summary: "show the PNN of the leader (recovery master), or UNKNOWN",
		multi:   true,
		run:     runLeader,
	})
}

func runLeader(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("leader")
	}
	var l control.Leader
	code, ok := e.query(control.Request{Command: control.CmdLeader}, &l)
	if !ok || e.json {
		return code
	}
	if l.PNN < 0 {
		fmt.Fprintln(e.stdout, "UNKNOWN")
	} else {
		fmt.Fprintf(e.stdout, "%d\n", l.PNN)
	}
	return code
}
