package main

import (
	"fmt"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "reloadips",
		usage:   "reloadips [all|PNN[,PNN...]]",
		summary: "reread public_addresses on the nodes (default: this one), then reallocate",
		slow:    true,
		run:     runReloadIPs,
	})
}

func runReloadIPs(e *env, args []string) int {
	if len(args) > 1 {
		return e.usage("reloadips")
	}
	if len(args) == 1 {
		if _, err := parseNodes(args[0]); err != nil {
			fmt.Fprintf(e.stderr, "Invalid node %s\n", args[0])
			return 1
		}
	}
	return e.act(control.Request{Command: control.CmdReloadIPs, Args: args})
}
