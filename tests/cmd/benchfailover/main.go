// Command benchfailover is `make bench-failover`: it measures failover on
// a 3-node cluster in network namespaces (the test bed, tests/bed), one
// fault at a time, several trials each, and prints a table and writes the
// same figures as JSON. With -ctdb (`make bench-failover-ctdb`) it runs
// the same scenarios on the same bed with Debian's CTDB 4.17 instead
// (installing the Debian package when ctdbd is missing), and prints the
// two side by side when ctdb-go's JSON is at hand.
//
// For each trial it picks a victim node that holds public addresses,
// arms its probes, injects the fault, and measures from that moment:
//
//   - detected: until another node's `ctdb -X status` shows the victim
//     flagged (polled every 20 ms for 3 s, then every 100 ms);
//   - configured: until the last of the victim's addresses is configured
//     on another node (netlink notifications in each node's namespace);
//   - ARP: until the client's ARP for the last of them is answered by
//     another node's MAC (bed.WatchARP; kernel receive timestamps);
//   - duplicate samples and the longest unserved stretch: the bed's
//     invariant checker, sampling from before the fault until the cluster
//     is healthy and balanced again after the fault is undone.
//
// Faults that the periodic monitor event finds (public-cable in Debian's
// CTDB, script-fail and postgres-stop in both) come after a random wait
// of up to MonitorInterval, so they hit random points of its cycle.
// Between trials the fault is undone and the cluster must be healthy and
// balanced again (a node left banned is unbanned); a cluster that cannot
// be brought back is replaced by a new one.
//
// It never judges the figures: a benchmark prints, it does not assert.
// Progress goes to stderr, the tables to stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// prefix names the benchmark's namespaces (bf<pid>-<n>-…), apart from the
// tests' and the demo's.
const prefix = "bf"

type options struct {
	debian    bool
	trials    int
	scenarios []string
	out       string
	compare   string
	bin       string
	verbose   bool
}

func main() {
	var o options
	var list string
	flag.BoolVar(&o.debian, "ctdb", false, "run Debian's ctdb 4.17 (apt-get install ctdb when missing) instead of ctdb-go")
	flag.IntVar(&o.trials, "trials", 10, "trials per scenario")
	flag.StringVar(&list, "scenarios", "", "comma-separated scenarios to run (default all): "+scenarioNames())
	flag.StringVar(&o.out, "out", "", "JSON output file (default $BENCH_OUT, else bench-failover.json; with -ctdb bench-failover-ctdb.json)")
	flag.StringVar(&o.compare, "compare", "", "with -ctdb: ctdb-go's JSON to print side by side (default bench-failover.json when it exists)")
	flag.StringVar(&o.bin, "bin", "", "directory with ctdb-go's ctdbd and ctdb (default: the repository's bin)")
	flag.BoolVar(&o.verbose, "v", false, "print every command the test bed runs")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected arguments %q", flag.Args())
	}
	if o.trials < 1 {
		fatalf("-trials %d: want at least 1", o.trials)
	}
	if list != "" {
		for _, s := range strings.Split(list, ",") {
			s = strings.TrimSpace(s)
			if findScenario(s) == nil {
				fatalf("unknown scenario %q; known: %s", s, scenarioNames())
			}
			o.scenarios = append(o.scenarios, s)
		}
	}
	if o.out == "" {
		o.out = os.Getenv("BENCH_OUT")
	}
	if o.out == "" {
		o.out = "bench-failover.json"
		if o.debian {
			o.out = "bench-failover-ctdb.json"
		}
	}
	if o.debian && o.compare == "" {
		if _, err := os.Stat("bench-failover.json"); err == nil && o.out != "bench-failover.json" {
			o.compare = "bench-failover.json"
		}
	}
	if os.Geteuid() != 0 {
		fatalf("needs root: it creates network namespaces; run: sudo make bench-failover")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fatalf("needs the ip command from iproute2: apt-get install iproute2")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	code := run(ctx, o)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "\ninterrupted: the clusters are gone, nothing is left behind")
		code = 130
	}
	os.Exit(code)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchfailover: "+format+"\n", args...)
	os.Exit(2)
}

func scenarioNames() string {
	var s []string
	for _, sc := range scenarios {
		s = append(s, sc.name)
	}
	return strings.Join(s, ",")
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// run runs the benchmark and returns the exit code.
func run(ctx context.Context, o options) int {
	defer bed.CloseAll()
	if removed, err := bed.Sweep(prefix); err != nil {
		logf("removing an earlier run's leftovers: %v", err)
	} else if len(removed) > 0 {
		logf("removed leftovers of an earlier run: %s", strings.Join(removed, " "))
	}
	r := &runner{opt: o, impl: "ctdb-go"}
	if o.debian {
		if err := bed.EnsureDebianCTDB(logf); err != nil {
			logf("Debian's ctdb cannot run: %v", err)
			fmt.Printf("\nDebian's ctdb could not be used: %v\n", err)
			return r.fallback()
		}
		r.impl = debianVersion()
		fmt.Printf("%s: the package's default scripts (%s) plus 50.probe; realtime scheduling off, cluster lock on a shared file, default tunables.\n",
			r.impl, strings.Join(bed.DebianScripts, " "))
		if _, err := exec.LookPath("iptables"); err != nil {
			fmt.Println("iptables is not installed (as on a default Debian 12), so 10.interface's connection blocking during releaseip only logs an error.")
		}
	} else if err := checkBin(o.bin); err != nil {
		logf("%v", err)
		return 1
	}
	var results []Result
	for _, sc := range scenarios {
		if len(o.scenarios) > 0 && !slices.Contains(o.scenarios, sc.name) {
			continue
		}
		res := r.scenario(ctx, sc)
		if ctx.Err() != nil {
			return 130
		}
		results = append(results, res)
	}
	title := fmt.Sprintf("failover benchmark: %s, 3 nodes, private eth0 / public eth1, %d trials per scenario", r.impl, o.trials)
	printTable(os.Stdout, title, results)
	if err := writeJSON(o.out, results); err != nil {
		logf("writing %s: %v", o.out, err)
		return 1
	}
	fmt.Printf("\nJSON: %s\n", o.out)
	if o.debian {
		if other, err := readJSON(o.compare); err == nil {
			printSideBySide(os.Stdout, other, results)
		} else if o.compare != "" {
			logf("no side-by-side table: %v", err)
		} else {
			fmt.Println("(run make bench-failover first for ctdb-go's figures side by side)")
		}
	}
	return 0
}

// fallback prints ctdb-go's table from its JSON when Debian's ctdb cannot
// run at all, and returns the exit code.
func (r *runner) fallback() int {
	other, err := readJSON(r.opt.compare)
	if err != nil {
		fmt.Println("ctdb-go's figures: run make bench-failover (no bench-failover.json here)")
		return 1
	}
	printTable(os.Stdout, "ctdb-go (from "+r.opt.compare+")", other)
	return 1
}

func checkBin(dir string) error {
	if dir == "" {
		repo, err := repoDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(repo, "bin")
	}
	for _, n := range []string{"ctdbd", "ctdb"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("%w: run make build first (make bench-failover does)", err)
		}
	}
	return nil
}

// repoDir finds the repository root above the working directory.
func repoDir() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module github.com/ctdb-go/ctdb-go\n") {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("no ctdb-go go.mod above the working directory: run from the repository")
		}
		d = up
	}
}

// debianVersion is "ctdb <version>" of the installed Debian package.
func debianVersion() string {
	out, err := exec.Command(bed.DebianCtdb, "version").Output()
	if err != nil {
		return "Debian ctdb"
	}
	return "ctdb " + strings.TrimSpace(string(out))
}

func writeJSON(path string, rs []Result) error {
	data, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func readJSON(path string) ([]Result, error) {
	if path == "" {
		return nil, errors.New("no file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rs []Result
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// logf is progress, on stderr, so stdout holds the tables alone.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
