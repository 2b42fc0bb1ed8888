package main

import (
	"fmt"
	"strconv"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "ifaces",
		usage:   "ifaces",
		summary: "show the public interfaces, their link state and address count",
		multi:   true,
		named:   true,
		run:     runIfaces,
	})
}

func runIfaces(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("ifaces")
	}
	var ifaces []control.Iface
	code, ok := e.query(control.Request{Command: control.CmdIfaces}, &ifaces)
	if !ok || e.json {
		return code
	}
	pnn, pcode, ok := e.pnn()
	if !ok {
		return pcode
	}
	if len(ifaces) == 0 {
		fmt.Fprintf(e.stdout, "No interfaces configured on node %d\n", pnn)
		return code
	}
	if e.machine {
		e.row("Name", "LinkStatus", "References")
	} else {
		fmt.Fprintf(e.stdout, "Interfaces on node %d\n", pnn)
	}
	for _, i := range ifaces {
		switch {
		case e.machine:
			link := "0"
			if i.LinkUp {
				link = "1"
			}
			e.row(i.Name, link, strconv.Itoa(i.References))
		default:
			link := "down"
			if i.LinkUp {
				link = "up"
			}
			fmt.Fprintf(e.stdout, "name:%s link:%s references:%d\n", i.Name, link, i.References)
		}
	}
	return code
}
