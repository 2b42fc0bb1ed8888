package main

import (
	"io"
	"sort"
)

// command is one `ctdb` subcommand; each lives in its own file and
// registers itself from init.
type command struct {
	name    string
	aliases []string
	usage   string // e.g. "moveip IP PNN"
	summary string // one line for `ctdb help`
	// offline commands run without a daemon (e.g. ipalloc).
	offline bool
	run     func(e *env, args []string) int // returns the exit code
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
