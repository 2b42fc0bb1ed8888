// Command soak runs ctdb-go's randomized fault injector (package
// tests/soak) on a cluster in network namespaces: one fault at a time,
// drawn from a seeded source, with the invariant checker watching. It
// prints the seed, every fault with its time and a summary, and exits 1 on
// a duplicate address or a liveness miss, with the end of every node's
// log. Needs root; `make soak` builds the binaries first.
//
//	go run ./tests/cmd/soak -duration 10m -nodes 5 [-seed N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
	"github.com/ctdb-go/ctdb-go/tests/soak"
)

func main() {
	var cfg soak.Config
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (default: drawn from the clock and printed)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long to inject faults")
	flag.IntVar(&cfg.Nodes, "nodes", 5, "cluster size (at least 3)")
	flag.StringVar(&cfg.Bin, "bin", "", "directory with ctdbd and ctdb (default: the repository's bin)")
	verbose := flag.Bool("v", false, "print every command the test bed runs")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "soak: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "soak: needs root (network namespaces)")
		os.Exit(2)
	}
	if removed, err := bed.Sweep(""); err != nil {
		fmt.Fprintf(os.Stderr, "soak: sweeping old beds: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Printf("soak: removed %d leftovers of earlier runs\n", len(removed))
	}
	bed.HandleSignals()
	cfg.Logf = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	if *verbose {
		cfg.BedLogf = func(format string, args ...any) { fmt.Printf("  bed: "+format+"\n", args...) }
	}
	if _, err := soak.Run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
