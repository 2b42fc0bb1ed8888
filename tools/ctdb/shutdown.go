package main

import "github.com/ctdb-go/ctdb-go/daemon/control"

func init() {
	register(&command{
		name:    "shutdown",
		usage:   "shutdown",
		summary: "stop ctdbd on the node (its addresses move first)",
		slow:    true,
		run:     adminCommand(control.CmdShutdown),
	})
}
