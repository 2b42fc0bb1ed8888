package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func init() {
	register(&command{
		name:    "status",
		usage:   "status",
		summary: "show the nodes, their flags, the generation and the leader",
		multi:   true,
		named:   true,
		run:     runStatus,
	})
}

func runStatus(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("status")
	}
	var st control.Status
	code, ok := e.query(control.Request{Command: control.CmdStatus}, &st)
	if !ok || e.json {
		return code
	}
	if e.machine {
		writeNodesMachine(e, st.Nodes)
		return code
	}
	writeNodes(e.stdout, st.Nodes, true)
	w := e.stdout
	if st.Generation == 0 {
		fmt.Fprintln(w, "Generation:INVALID")
	} else {
		fmt.Fprintf(w, "Generation:%d\n", st.Generation)
	}
	vnn := st.VNNMap
	if vnn == nil {
		vnn = activeNodes(st.Nodes)
	}
	fmt.Fprintf(w, "Size:%d\n", len(vnn))
	for i, p := range vnn {
		fmt.Fprintf(w, "hash:%d lmaster:%d\n", i, p)
	}
	mode := "NORMAL"
	if st.RecoveryMode != 0 {
		mode = "RECOVERY"
	}
	fmt.Fprintf(w, "Recovery mode:%s (%d)\n", mode, st.RecoveryMode)
	if st.Leader < 0 {
		fmt.Fprintln(w, "Leader:UNKNOWN")
	} else {
		fmt.Fprintf(w, "Leader:%d\n", st.Leader)
	}
	// ctdb-go's own lines, only when there is something to say.
	if st.Fencing != "" {
		fmt.Fprintf(w, "Fencing:%s\n", st.Fencing)
	}
	if st.DuplicatesResolved != 0 {
		fmt.Fprintf(w, "Duplicates resolved:%d\n", st.DuplicatesResolved)
	}
	return code
}

// activeNodes is what CTDB's vnnmap holds after a recovery: the nodes that
// are not INACTIVE (unhealthy and disabled nodes stay in it).
func activeNodes(nodes []control.NodeStatus) []int {
	var pnns []int
	for _, n := range nodes {
		if n.Flags&nodeflag.Inactive == 0 {
			pnns = append(pnns, n.PNN)
		}
	}
	return pnns
}

// flagsText is a node's state as `ctdb status` shows it.
func flagsText(n control.NodeStatus) string {
	if n.PartiallyOnline && n.Flags == 0 {
		return "PARTIALLYONLINE"
	}
	return n.Flags.String()
}

// writeNodes prints CTDB's node lines, "pnn:1 198.18.0.2       OK (THIS
// NODE)", after "Number of nodes:N" when header is set. Deleted nodes are
// counted but not listed.
func writeNodes(w io.Writer, nodes []control.NodeStatus, header bool) {
	if header {
		deleted := 0
		for _, n := range nodes {
			if n.Flags&nodeflag.Deleted != 0 {
				deleted++
			}
		}
		if deleted == 0 {
			fmt.Fprintf(w, "Number of nodes:%d\n", len(nodes))
		} else {
			fmt.Fprintf(w, "Number of nodes:%d (including %d deleted nodes)\n", len(nodes), deleted)
		}
	}
	for _, n := range nodes {
		if n.Flags&nodeflag.Deleted != 0 {
			continue
		}
		this := ""
		if n.ThisNode {
			this = " (THIS NODE)"
		}
		fmt.Fprintf(w, "pnn:%d %-16s %s%s\n", n.PNN, addrText(n.Address), flagsText(n), this)
	}
}

// writeNodesMachine is `ctdb -X status` and `ctdb -X nodestatus`.
func writeNodesMachine(e *env, nodes []control.NodeStatus) {
	e.row("Node", "IP", "Disconnected", "Unknown", "Banned", "Disabled", "Unhealthy",
		"Stopped", "Inactive", "PartiallyOnline", "ThisNode")
	bit := func(f nodeflag.Flags, mask nodeflag.Flags) string {
		if f&mask != 0 {
			return "1"
		}
		return "0"
	}
	for _, n := range nodes {
		f := n.Flags
		if f&nodeflag.Deleted != 0 {
			continue
		}
		partial := "0"
		if n.PartiallyOnline && f == 0 {
			partial = "1"
		}
		this := "N"
		if n.ThisNode {
			this = "Y"
		}
		e.row(strconv.Itoa(n.PNN), addrText(n.Address),
			bit(f, nodeflag.Disconnected), bit(f, nodeflag.Unknown), bit(f, nodeflag.Banned),
			bit(f, nodeflag.PermanentlyDisabled), bit(f, nodeflag.Unhealthy),
			bit(f, nodeflag.Stopped), bit(f, nodeflag.Inactive), partial, this)
	}
}
