package main

import "github.com/ctdb-go/ctdb-go/daemon/control"

func init() {
	register(&command{
		name:    "disable",
		usage:   "disable",
		summary: "disable the node: it gives up its public addresses (kept across restarts)",
		multi:   true,
		slow:    true,
		run:     adminCommand(control.CmdDisable),
	})
	register(&command{
		name:    "enable",
		usage:   "enable",
		summary: "enable a disabled node",
		multi:   true,
		slow:    true,
		run:     adminCommand(control.CmdEnable),
	})
}

// adminCommand is a control without arguments that changes the node's
// admin flags and waits for the takeover run. "Node 1 is already
// disabled" comes back as the daemon's Notice: printed, exit 0.
func adminCommand(name string) func(e *env, args []string) int {
	return func(e *env, args []string) int {
		if len(args) != 0 {
			return e.usage(name)
		}
		return e.act(control.Request{Command: name})
	}
}
