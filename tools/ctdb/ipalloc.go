package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ctdb-go/ctdb-go/ipalloc"
	"github.com/ctdb-go/ctdb-go/ipalloc/casefile"
)

func init() {
	register(&command{
		name:    "ipalloc",
		usage:   "ipalloc FILE.json",
		summary: "show the allocation ipalloc makes for a case file (offline, no daemon)",
		offline: true,
		run:     runIPAlloc,
	})
}

// runIPAlloc reads one allocation case in the JSON format of CTDB's
// allocation cases (see ipalloc/casefile) and prints the allocation as
// CTDB's test program does: "IP PNN" per address in CTDB's order, -1 for
// none; for a multi-step case each step's allocation, separated by an
// empty line. With -v the notes (CTDB's warnings) go to stderr. Bad input
// is refused with exit code 2, nothing on stdout.
func runIPAlloc(e *env, args []string) int {
	if len(args) != 1 || looksLikeFlag(args[0]) {
		fmt.Fprintln(e.stderr, "usage: ctdb ipalloc FILE.json")
		return 2
	}
	path := args[0]
	fail := func(err error) int {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, below
		}
		fmt.Fprintf(e.stderr, "ctdb ipalloc: %s: %v\n", path, err)
		return 2
	}
	c, err := casefile.Load(path)
	if err != nil {
		return fail(err)
	}
	w := bufio.NewWriter(e.stdout)
	for i, st := range c.Steps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		res := ipalloc.Allocate(st.Input)
		fmt.Fprint(w, casefile.Format(res.Assignments))
		if e.verbose {
			for _, n := range res.Notes {
				fmt.Fprintf(e.stderr, "ctdb ipalloc: %s: note: %s\n", path, n)
			}
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(e.stderr, "ctdb ipalloc: writing the allocation: %v\n", err)
		return 1
	}
	return 0
}

// looksLikeFlag: an option where the file should be ("-v" and the like;
// a lone "-" is a file name).
func looksLikeFlag(a string) bool { return len(a) > 1 && a[0] == '-' }
