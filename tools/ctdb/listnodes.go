package main

import (
	"fmt"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "listnodes",
		usage:   "listnodes",
		summary: "list the nodes' private addresses",
		run:     runListNodes,
	})
}

// runListNodes prints one private address a line, deleted nodes left out;
// -X prints |PNN|ADDRESS| rows without a header, as CTDB does.
func runListNodes(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("listnodes")
	}
	var nodes []control.NodeAddr
	code, ok := e.query(control.Request{Command: control.CmdListNodes}, &nodes)
	if !ok || e.json {
		return code
	}
	for _, n := range nodes {
		if n.Deleted {
			continue
		}
		if e.machine {
			e.row(strconv.Itoa(n.PNN), addrText(n.Address))
		} else {
			fmt.Fprintln(e.stdout, addrText(n.Address))
		}
	}
	return code
}
