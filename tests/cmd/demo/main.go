// Command demo is `make demo`: a 3-node ctdb-go cluster in network
// namespaces with six public addresses. It shows the cluster, pulls one
// node's public cable, times each of that node's addresses until the
// client's ARP is answered by another node, shows the cluster again,
// restores the cable, waits for the addresses to spread back, and cleans
// everything up, also on Ctrl-C. It builds nothing: the Makefile runs
// `make build` first, and the demo uses bin/ctdbd and bin/ctdb.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

func main() {
	verbose := flag.Bool("v", false, "print every command the test bed runs")
	bin := flag.String("bin", "", "directory with ctdbd and ctdb (default: the repository's bin)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "make demo needs root: it creates network namespaces; run: sudo make demo")
		os.Exit(1)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fmt.Fprintln(os.Stderr, "make demo needs the ip command from iproute2: apt-get install iproute2")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	d := &demo{verbose: *verbose, bin: *bin}
	err := d.run(ctx)
	if ctx.Err() != nil {
		fmt.Println("\ninterrupted: the cluster is gone, nothing is left behind")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// pulled is the node whose public cable the demo pulls.
const pulled = 1

type demo struct {
	verbose bool
	bin     string
	b       *bed.Bed
}

func (d *demo) run(ctx context.Context) (err error) {
	if removed, err := bed.Sweep(bed.DefaultPrefix); err != nil {
		fmt.Fprintf(os.Stderr, "demo: removing an earlier run's leftovers: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Printf("removed leftovers of an earlier run: %s\n", strings.Join(removed, " "))
	}
	cfg := bed.Config{Nodes: 3, Bin: d.bin, InstallShipped: []string{"10.interface"}}
	if d.verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Printf("  | "+format+"\n", args...) }
	}
	b, err := bed.New(cfg)
	if err != nil {
		return err
	}
	d.b = b
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	vips := b.PublicAddrs()
	fmt.Printf("ctdb-go demo: 3 nodes in network namespaces %s-n0..n2, a client in %s,\n", b.ID(), b.ClientNS())
	fmt.Printf("public addresses %s to %s on each node's eth1, private network %s.\n\n",
		vips[0], vips[len(vips)-1], bed.PrivateNet)

	fmt.Println("starting ctdbd on every node ...")
	start := time.Now()
	if err := b.StartAll(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.WaitHealthy(wctx); err != nil {
		d.logTails()
		return err
	}
	fmt.Printf("healthy after %s: every node OK, every address served\n", ms(time.Since(start)))
	if err := d.show(ctx); err != nil {
		return err
	}

	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		return err
	}
	held, err := b.Holders()
	if err != nil {
		return err
	}
	var moving []netip.Addr
	for _, p := range vips {
		if slices.Equal(held[p.Addr()], []int{pulled}) {
			moving = append(moving, p.Addr())
		}
	}
	fmt.Printf("\npulling node %d's public cable: its eth1 loses carrier; it holds %s\n", pulled, addrList(moving))
	if err := d.moveTimes(ctx, moving); err != nil {
		return err
	}

	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.WaitFor(wctx, fmt.Sprintf("node %d flagged", pulled), func(ctx context.Context) string {
		st, err := b.Status(ctx, 0)
		if err != nil {
			return err.Error()
		}
		if st[pulled].OK() {
			return fmt.Sprintf("node %d still OK", pulled)
		}
		return ""
	}); err != nil {
		if ctx.Err() != nil {
			return err
		}
		fmt.Printf("(node %d is not flagged yet: %v)\n", pulled, err)
	}
	if err := d.show(ctx); err != nil {
		return err
	}

	fmt.Printf("\nrestoring node %d's public cable ...\n", pulled)
	restored := time.Now()
	if err := b.RestorePublic(pulled); err != nil {
		return err
	}
	wctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.WaitFor(wctx, "the addresses to spread back", func(ctx context.Context) string {
		if reason := d.balanced(); reason != "" {
			return reason
		}
		st, err := b.Status(ctx, 0)
		if err != nil {
			return err.Error()
		}
		for _, n := range st {
			if !n.OK() {
				return fmt.Sprintf("node %d is %s", n.PNN, n.FlagString())
			}
		}
		return ""
	}); err != nil {
		return err
	}
	fmt.Printf("balanced again %s after the cable came back\n", ms(time.Since(restored)))
	if err := d.show(ctx); err != nil {
		return err
	}

	rep := c.Stop()
	fmt.Printf("\ninvariant checker, every 50 ms from the client and every node: %d samples, %d with an address on two nodes or answered by two MACs\n",
		rep.Samples, rep.DuplicateSamples)
	if err := rep.Err(); err != nil {
		fmt.Println(rep)
		return err
	}
	fmt.Println("\ncleaning up: daemons stopped, namespaces deleted")
	return nil
}

// moveTimes pulls the cable and prints, for each address the node held,
// how long until the client's ARP was answered by another node's MAC. The
// probe (one ARP request per address per millisecond) is armed before the
// cable is pulled.
func (d *demo) moveTimes(ctx context.Context, moving []netip.Addr) error {
	b := d.b
	old := b.NodeMAC(pulled).String()
	w, err := b.WatchARP(moving, time.Millisecond, func(_ netip.Addr, hw net.HardwareAddr) bool {
		return hw.String() != old
	})
	if err != nil {
		return err
	}
	defer w.Close()
	t0 := time.Now()
	if err := b.PullPublic(pulled); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, werr := w.Wait(wctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, ip := range moving {
		a, ok := got[ip]
		if !ok {
			fmt.Printf("%s did not answer from another node within 30 s\n", ip)
			continue
		}
		fmt.Printf("%s moved from node %d to node %d in %s\n", ip, pulled, b.NodeByMAC(a.MAC), ms(a.At.Sub(t0)))
	}
	if werr != nil {
		d.logTails()
	}
	return nil
}

// balanced says why the addresses are not spread evenly over all nodes
// yet ("" when they are), from the nodes' own interfaces.
func (d *demo) balanced() string {
	held, err := d.b.Holders()
	if err != nil {
		return err.Error()
	}
	count := make([]int, d.b.Nodes())
	for _, p := range d.b.PublicAddrs() {
		h := held[p.Addr()]
		if len(h) != 1 {
			return fmt.Sprintf("%s is on nodes %v", p.Addr(), h)
		}
		count[h[0]]++
	}
	if slices.Max(count)-slices.Min(count) > 1 {
		return fmt.Sprintf("addresses per node %v", count)
	}
	return ""
}

// show prints `ctdb status` and `ctdb ip all` as node 0 sees them.
func (d *demo) show(ctx context.Context) error {
	for _, args := range [][]string{{"status"}, {"ip", "all"}} {
		out, err := d.b.CtdbContext(ctx, 0, args...)
		if err != nil {
			return err
		}
		fmt.Printf("\n[node 0]# ctdb %s\n%s", strings.Join(args, " "), out.Stdout)
		if out.Stderr != "" {
			fmt.Print(out.Stderr)
		}
	}
	return nil
}

// logTails prints the end of every node's log, for a start that failed.
func (d *demo) logTails() {
	for i := range d.b.Nodes() {
		fmt.Fprintf(os.Stderr, "--- node %d: %s (end)\n%s\n", i, d.b.Paths(i).Log, d.b.LogTail(i, 15))
	}
}

func ms(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func addrList(ips []netip.Addr) string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		return "no address"
	}
	return strings.Join(s, ", ")
}
