package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "ip",
		usage:   "ip [all] [-v]",
		summary: "show the public addresses and the node holding each",
		multi:   true,
		named:   true,
		run:     runIP,
	})
}

// runIP is CTDB's control_ip. Without "all" it shows what the node
// believes; with "all", every node's claims merged.
func runIP(e *env, args []string) int {
	all := false
	switch {
	case len(args) == 1 && args[0] == "all":
		all = true
	case len(args) != 0:
		return e.usage("ip")
	}
	req := control.Request{Command: control.CmdIP}
	if all {
		req.Args = []string{"all"}
	}
	var ips control.IPs
	code, ok := e.query(req, &ips)
	if !ok || e.json {
		return code
	}
	list := slices.Clone(ips.IPs)
	// Ascending, IPv4 before IPv6, as CTDB sorts them.
	slices.SortStableFunc(list, func(a, b control.PublicIP) int { return a.Addr.Compare(b.Addr) })

	w := e.stdout
	if e.machine {
		if e.verbose {
			e.row("Public IP", "Node", "ActiveInterfaces", "AvailableInterfaces", "ConfiguredInterfaces")
		} else {
			e.row("Public IP", "Node")
		}
	} else if all || ips.All {
		fmt.Fprintln(w, "Public IPs on ALL nodes")
	} else {
		fmt.Fprintf(w, "Public IPs on node %d\n", ips.PNN)
	}
	for _, ip := range list {
		addr := addrText(ip.Addr)
		avail := strings.Join(ip.Available, ",")
		conf := strings.Join(ip.Configured, ",")
		switch {
		case e.machine && e.verbose:
			e.row(addr, strconv.Itoa(ip.PNN), ip.Active, avail, conf)
		case e.machine:
			e.row(addr, strconv.Itoa(ip.PNN))
		case e.verbose:
			fmt.Fprintf(w, "%s node[%d] active[%s] available[%s] configured[%s]", addr, ip.PNN, ip.Active, avail, conf)
			if ip.ProbeAnswer != "" {
				// ctdb-go: who answered the last duplicate-address probe.
				fmt.Fprintf(w, " probe-answer[%s]", ip.ProbeAnswer)
			}
			fmt.Fprintln(w)
		default:
			fmt.Fprintf(w, "%s %d\n", addr, ip.PNN)
		}
	}
	return code
}
