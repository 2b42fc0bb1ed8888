package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "help",
		usage:   "help [COMMAND]",
		summary: "show the options and commands, or one command's usage",
		offline: true,
		run:     runHelp,
	})
	register(&command{
		name:    "version",
		usage:   "version",
		summary: "show the version of ctdb",
		offline: true,
		run: func(e *env, args []string) int {
			if len(args) != 0 {
				return e.usage("version")
			}
			fmt.Fprintln(e.stdout, version)
			return 0
		},
	})
}

func runHelp(e *env, args []string) int {
	switch len(args) {
	case 0:
		writeHelp(e.stdout)
		return 0
	case 1:
		c, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(e.stderr, "ctdb: unknown command '%s'; 'ctdb help' lists the commands\n", args[0])
			return 2
		}
		fmt.Fprintf(e.stdout, "%s\n%s\n", usageText(c), c.summary)
		if len(c.aliases) > 0 {
			fmt.Fprintf(e.stdout, "Also: %s\n", strings.Join(c.aliases, ", "))
		}
		if c.multi {
			fmt.Fprintln(e.stdout, "Takes -n all.")
		}
		return 0
	}
	return e.usage("help")
}

const usageLine = "Usage: ctdb [OPTIONS] COMMAND [ARGS...]\n"

const optionsHelp = `Options (before or after the command):
  -n, --node=PNN|all        the node to ask (default: this one); also PNN,PNN,...
  -X                        machine-readable output, fields between |
  -Y, --machinereadable     the same
  -x, --separator=SEP       separator for machine-readable output (default |)
  -j, --json                print the daemon's answer as JSON
  -v, --verbose             more detail (ip -v)
  -t, --timelimit=SECS      time limit for one control (default 10)
  -T, --maxruntime=SECS     time limit for the command (default 120, or $CTDB_TIMEOUT)
  -d, --debug=LEVEL         accepted for compatibility with CTDB
      --socket=PATH         ctdbd's control socket (default $CTDB_SOCKET, or ` + control.DefaultSocket + `)
  -h, --help                this help; with a command, its usage
`

// writeUsage is the short reminder for a command line without a command.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, usageLine)
	fmt.Fprintln(w, "Run 'ctdb help' for the options and commands.")
}

// writeHelp lists the options and every command with its usage and
// summary.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, usageLine+"\n"+optionsHelp+"\nCommands:\n")
	const width = 42
	for _, c := range sortedCommands() {
		summary := c.summary
		if len(c.aliases) > 0 {
			summary += " (also: " + strings.Join(c.aliases, ", ") + ")"
		}
		forms := strings.Split(c.usage, "\n")
		if len(forms[0]) > width {
			fmt.Fprintf(w, "  %s\n  %-*s %s\n", forms[0], width, "", summary)
		} else {
			fmt.Fprintf(w, "  %-*s %s\n", width, forms[0], summary)
		}
		for _, f := range forms[1:] {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}

// usageText is "Usage: ctdb [OPTIONS] FORM" for each of c's forms.
func usageText(c *command) string {
	var b strings.Builder
	for i, f := range strings.Split(c.usage, "\n") {
		if i == 0 {
			b.WriteString("Usage: ctdb [OPTIONS] ")
		} else {
			b.WriteString("       ctdb [OPTIONS] ")
		}
		b.WriteString(f + "\n")
	}
	return b.String()
}
