// Command ctdb is ctdb-go's command-line tool, CTDB's `ctdb` for ctdb-go:
// it talks to the local ctdbd over its control socket.
package main

import (
	"fmt"
	"os"
)

func main() {
	e := &env{stdout: os.Stdout, stderr: os.Stderr, sep: "|"}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ctdb [OPTIONS] COMMAND [ARGS]")
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "ctdb: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	os.Exit(c.run(e, os.Args[2:]))
}
