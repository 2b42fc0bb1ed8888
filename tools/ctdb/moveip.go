package main

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "moveip",
		usage:   "moveip IP PNN",
		summary: "move a public address to node PNN (stays only with NoIPFailback=1)",
		slow:    true,
		run:     runMoveIP,
	})
}

func runMoveIP(e *env, args []string) int {
	if len(args) != 2 {
		return e.usage("moveip")
	}
	ip, err := netip.ParseAddr(args[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "Invalid IP address %s\n", args[0])
		return 1
	}
	pnn, err := strconv.ParseUint(args[1], 0, 31)
	if err != nil {
		fmt.Fprintf(e.stderr, "Invalid PNN %s\n", args[1])
		return 22
	}
	return e.act(control.Request{Command: control.CmdMoveIP, Args: []string{ip.String(), strconv.FormatUint(pnn, 10)}})
}
