package main

import (
	"fmt"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "pnn",
		usage:   "pnn",
		summary: "show the PNN of this node",
		multi:   true,
		named:   true,
		run:     runPNN,
	})
}

func runPNN(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("pnn")
	}
	var p control.PNN
	code, ok := e.query(control.Request{Command: control.CmdPNN}, &p)
	if !ok || e.json {
		return code
	}
	fmt.Fprintf(e.stdout, "%d\n", p.PNN)
	return code
}
