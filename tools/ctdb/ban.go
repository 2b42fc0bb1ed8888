package main

import (
	"fmt"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "ban",
		usage:   "ban SECONDS",
		summary: "ban the node for SECONDS: INACTIVE, no addresses",
		multi:   true,
		slow:    true,
		run:     runBan,
	})
	register(&command{
		name:    "unban",
		usage:   "unban",
		summary: "lift the node's ban",
		multi:   true,
		slow:    true,
		run:     adminCommand(control.CmdUnban),
	})
}

func runBan(e *env, args []string) int {
	if len(args) != 1 {
		return e.usage("ban")
	}
	secs, err := strconv.ParseUint(args[0], 0, 32)
	if err != nil {
		fmt.Fprintf(e.stderr, "ctdb: invalid ban time %q: want seconds\n", args[0])
		return 22
	}
	if secs == 0 {
		fmt.Fprintln(e.stderr, "Ban time cannot be zero")
		return 22 // EINVAL, as CTDB
	}
	return e.act(control.Request{Command: control.CmdBan, Args: []string{strconv.FormatUint(secs, 10)}})
}
