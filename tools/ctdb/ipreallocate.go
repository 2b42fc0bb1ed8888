package main

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "ipreallocate",
		aliases: []string{"sync"},
		usage:   "ipreallocate [--dry-run]",
		summary: "ask the leader for a takeover run and wait for it; --dry-run shows what would move",
		slow:    true,
		flags:   []string{"--dry-run"},
		run:     runIPReallocate,
	})
}

// runIPReallocate prints nothing on success, as CTDB. ctdb-go adds
// --dry-run (print the plan, move nothing) and -v (print what moved).
func runIPReallocate(e *env, args []string) int {
	dry := false
	for _, a := range args {
		if a != "--dry-run" {
			return e.usage("ipreallocate")
		}
		dry = true
	}
	req := control.Request{Command: control.CmdIPReallocate, DryRun: dry}
	resp, code, ok := e.send(req)
	if !ok {
		return code
	}
	if e.json {
		e.printJSON(resp.Data)
		return code
	}
	if !dry && !e.verbose {
		return code
	}
	var plan control.Plan
	if len(resp.Data) > 0 {
		if code, ok := decode(e, req.Command, resp.Data, &plan); !ok {
			return code
		}
	}
	writePlan(e, plan, dry)
	return code
}

// writePlan prints one line per address that moves (or would move), in
// address order. -X: |Public IP|From|To| with -1 for nobody.
func writePlan(e *env, plan control.Plan, dry bool) {
	moves := slices.Clone(plan.Moves)
	slices.SortStableFunc(moves, func(a, b control.Move) int { return a.Addr.Compare(b.Addr) })
	if e.machine {
		e.row("Public IP", "From", "To")
		for _, m := range moves {
			e.row(addrText(m.Addr), strconv.Itoa(m.From), strconv.Itoa(m.To))
		}
		return
	}
	if len(moves) == 0 {
		if dry {
			fmt.Fprintln(e.stdout, "No public IP would move")
		} else {
			fmt.Fprintln(e.stdout, "No public IP moved")
		}
		return
	}
	verb := map[bool][3]string{true: {"Would move", "Would assign", "Would release"}, false: {"Moved", "Assigned", "Released"}}[dry]
	for _, m := range moves {
		a := addrText(m.Addr)
		switch {
		case m.From < 0:
			fmt.Fprintf(e.stdout, "%s %s to node %d\n", verb[1], a, m.To)
		case m.To < 0:
			fmt.Fprintf(e.stdout, "%s %s from node %d\n", verb[2], a, m.From)
		default:
			fmt.Fprintf(e.stdout, "%s %s from node %d to node %d\n", verb[0], a, m.From, m.To)
		}
	}
}
