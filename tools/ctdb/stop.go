package main

import "github.com/ctdb-go/ctdb-go/daemon/control"

func init() {
	register(&command{
		name:    "stop",
		usage:   "stop",
		summary: "stop the node: INACTIVE, no addresses, no leadership (kept across restarts)",
		multi:   true,
		slow:    true,
		run:     adminCommand(control.CmdStop),
	})
	register(&command{
		name:    "continue",
		usage:   "continue",
		summary: "restart a stopped node",
		multi:   true,
		slow:    true,
		run:     adminCommand(control.CmdContinue),
	})
}
