package main

import (
	"fmt"
	"net/netip"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "gratarp",
		usage:   "gratarp IP IFACE",
		summary: "send gratuitous ARPs (IPv6: unsolicited neighbour adverts) for IP on IFACE",
		multi:   true,
		run:     runGratARP,
	})
}

func runGratARP(e *env, args []string) int {
	if len(args) != 2 {
		return e.usage("gratarp")
	}
	ip, err := netip.ParseAddr(args[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "Invalid IP address %s\n", args[0])
		return 1
	}
	return e.act(control.Request{Command: control.CmdGratARP, Args: []string{ip.String(), args[1]}})
}
