package main

import (
	"fmt"
	"slices"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func init() {
	register(&command{
		name:    "nodestatus",
		usage:   "nodestatus [all|PNN[,PNN...]]",
		summary: "show node lines; the exit code is the OR of their flags",
		run:     runNodeStatus,
	})
}

// runNodeStatus is CTDB's control_nodestatus: the node lines of the
// nodes asked for (this node by default), with the "Number of nodes"
// header only for "all", and an exit code that a script can test: the OR
// of the nodes' flags, 0 when all are OK.
func runNodeStatus(e *env, args []string) int {
	if len(args) > 1 {
		return e.usage("nodestatus")
	}
	spec := ""
	if len(args) == 1 {
		spec = args[0]
	}
	var want []int
	if spec != "" {
		var err error
		if want, err = parseNodes(spec); err != nil {
			fmt.Fprintf(e.stderr, "Invalid node %s\n", spec)
			return 10
		}
	}
	var st control.Status
	code, ok := e.query(control.Request{Command: control.CmdNodeStatus}, &st)
	if !ok {
		return code
	}

	var nodes []control.NodeStatus
	switch {
	case spec == "all":
		nodes = st.Nodes
	case spec == "":
		want = []int{st.PNN}
		fallthrough
	default:
		for _, p := range want {
			i := slices.IndexFunc(st.Nodes, func(n control.NodeStatus) bool { return n.PNN == p })
			if i < 0 {
				fmt.Fprintf(e.stderr, "Node %d does not exist\n", p)
				return 10
			}
			nodes = append(nodes, st.Nodes[i])
		}
	}
	exit := 0
	for _, n := range nodes {
		// A deleted node is not a node; CTDB ORs its DELETED bit in too,
		// which makes "all" fail forever once one line is commented out.
		exit |= int(n.Flags &^ nodeflag.Deleted)
	}
	switch {
	case e.json:
	case e.machine:
		writeNodesMachine(e, nodes)
	default:
		writeNodes(e.stdout, nodes, spec == "all")
	}
	return exit
}
