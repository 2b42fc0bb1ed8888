package main

import (
	"context"
	"io"
	"sort"
	"time"
)

// command is one `ctdb` subcommand; each lives in its own file and
// registers itself from init.
type command struct {
	name    string
	aliases []string
	usage   string // e.g. "moveip IP PNN"; several forms one a line
	summary string // one line for `ctdb help`
	// offline commands run without a daemon (e.g. ipalloc); they get their
	// arguments as given, global options after the command included.
	offline bool
	run     func(e *env, args []string) int // returns the exit code

	// multi commands accept `-n all` and `-n PNN,PNN`: run calls them once
	// per node with e.target set.
	multi bool
	// named commands name the node in their output ("Public IPs on node
	// 1"); for the others, a run on several nodes prints ">> NODE: N <<"
	// before each node's output.
	named bool
	// slow commands wait for a takeover run or an event: their control may
	// take up to -T (max runtime) instead of -t.
	slow bool
	// flags are the command's own options (e.g. "--dry-run"); other
	// arguments starting with "-" that are not global options are refused.
	flags []string
}

// env is what a command gets: output streams and the global options.
type env struct {
	stdout, stderr io.Writer
	machine        bool   // -X / -Y: CTDB's machine-readable output
	sep            string // separator for machine output, "|" by default
	json           bool   // --json
	verbose        bool   // -v
	node           string // -n PNN|all; "" means this node
	socket         string // control socket path

	timeout    time.Duration   // -t: one control's time limit
	maxRuntime time.Duration   // -T: the whole command's time limit
	debug      string          // -d: accepted for CTDB compatibility
	ctx        context.Context // ends at -T
	// callTimeout is what one control of the running command may take:
	// timeout, or maxRuntime for slow commands.
	callTimeout time.Duration
	// target is the node the command is about: control.ThisNode, or the
	// PNN given with -n (one at a time for -n all).
	target int
	// loc is the zone times are shown in, as ctime(3) does (local time).
	loc *time.Location
}

var commands = map[string]*command{}

// register adds c to the command table; it panics on a duplicate name,
// which is a programming error caught by any test.
func register(c *command) {
	for _, n := range append([]string{c.name}, c.aliases...) {
		if _, dup := commands[n]; dup {
			panic("ctdb: command registered twice: " + n)
		}
		commands[n] = c
	}
}

// sortedCommands lists each command once, by name.
func sortedCommands() []*command {
	seen := map[*command]bool{}
	var cs []*command
	for _, c := range commands {
		if !seen[c] {
			seen[c] = true
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}
