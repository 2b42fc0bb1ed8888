//go:build integration

package tests

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// Issue 4, "Done when": three real ctdbd nodes in network namespaces, with
// the invariant checker sampling every 50 ms beside every test; any sample
// with an address on two nodes, or two MACs answering one address, fails
// the test. Times are measured and logged (MEASURE lines), never asserted;
// each wait has a generous deadline so a daemon that never gets there fails.

// cluster builds a bed (cfg.Nodes, 0 meaning 3) with the shipped
// 10.interface and LeaseTime 2, starts the checker before any daemon,
// starts every daemon and returns once every address is on exactly one
// node, evenly spread, every node OK and WaitHealthy agrees. With a name
// it measures the time from the last daemon's start (see waitBalanced).
func cluster(t *testing.T, cfg bed.Config, name string) (*bed.Bed, *bed.Checker) {
	t.Helper()
	cfg.InstallShipped = append(cfg.InstallShipped, "10.interface")
	if cfg.Tunables == nil {
		cfg.Tunables = map[string]uint32{}
	}
	cfg.Tunables["LeaseTime"] = leaseTime
	if cfg.Logf == nil {
		cfg.Logf = quietLogf(t)
	}
	b := newBed(t, cfg)
	dumpLogsOnFailure(t, b)
	measureSummary(t)
	c := startChecker(t, b)
	if err := b.StartAll(); err != nil {
		t.Fatalf("StartAll: %v", err)
	}
	if err := waitBalanced(t, b, time.Now(), name, 30*time.Second); err != nil {
		t.Fatalf("after start: %v", err)
	}
	if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	return b, c
}

// waitBalanced polls (every 10 ms) until every public address is on
// exactly one node, evenly spread, and node 0 sees every node OK. With a
// name it measures, from t0, when the addresses were spread evenly (name)
// and when the status said every node OK as well (name_all_ok): the two
// come from different sources (the kernels; gossip) and can differ. Each
// new reason to wait is logged with its time, so a slow figure can be
// read back.
func waitBalanced(t *testing.T, b *bed.Bed, t0 time.Time, name string, d time.Duration) error {
	t.Helper()
	cx := ctx(t, d)
	last := ""
	var spreadAt time.Time
	err := poll(cx, 10*time.Millisecond, func() string {
		why := spread(b, nil)
		if why != "" {
			spreadAt = time.Time{}
		} else {
			if spreadAt.IsZero() {
				spreadAt = time.Now()
			}
			why = balancedOK(cx, b, 0)
		}
		if why != last && len(b.PublicAddrs()) < 100 {
			t.Logf("+%v waiting for balance: %s", time.Since(t0).Round(time.Millisecond), why)
			last = why
		}
		return why
	})
	if err == nil && name != "" {
		measure(t, name, spreadAt.Sub(t0))
		measure(t, name+"_all_ok", time.Since(t0))
	}
	return err
}

// leaderOf is the leader's PNN as node i sees it (`ctdb leader`), -1 for
// UNKNOWN.
func leaderOf(ctx context.Context, b *bed.Bed, i int) (int, error) {
	out, err := b.CtdbContext(ctx, i, "leader")
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(out.Stdout)
	if out.Code != 0 {
		return 0, fmt.Errorf("ctdb leader on node %d: %s", i, out)
	}
	if s == "UNKNOWN" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("ctdb leader on node %d: %q", i, s)
	}
	return n, nil
}

// agreedLeader is the leader every node in nodes names; it fails the test
// when they do not agree within 10 s.
func agreedLeader(t *testing.T, b *bed.Bed, nodes []int) int {
	t.Helper()
	l := -1
	cx := ctx(t, 10*time.Second)
	if err := poll(cx, 50*time.Millisecond, func() string {
		l = -1
		for _, i := range nodes {
			n, err := leaderOf(cx, b, i)
			if err != nil {
				return err.Error()
			}
			if n < 0 || l >= 0 && n != l {
				return fmt.Sprintf("node %d says the leader is %d, node before %d", i, n, l)
			}
			l = n
		}
		return ""
	}); err != nil {
		t.Fatalf("no agreed leader: %v", err)
	}
	return l
}

func others(b *bed.Bed, i int) []int {
	var out []int
	for n := range b.Nodes() {
		if n != i {
			out = append(out, n)
		}
	}
	return out
}

// servedBy says why every public address is not on exactly one node of
// nodes ("" when it is).
func servedBy(b *bed.Bed, nodes []int) string {
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	for _, p := range b.PublicAddrs() {
		h := held[p.Addr()]
		if len(h) != 1 || !slices.Contains(nodes, h[0]) {
			return fmt.Sprintf("%s is on nodes %v, want one of %v", p.Addr(), h, nodes)
		}
	}
	return ""
}

// flagsOf is node n's flags as node from sees them.
func flagsOf(ctx context.Context, b *bed.Bed, from, n int) (nodeflag.Flags, error) {
	st, err := b.Status(ctx, from)
	if err != nil {
		return 0, err
	}
	for _, s := range st {
		if s.PNN == n {
			return s.Flags, nil
		}
	}
	return 0, fmt.Errorf("node %d not in node %d's status", n, from)
}

// TestClusterStartBalanced: three nodes, six addresses, 2/2/2 after start.
func TestClusterStartBalanced(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3}, "cluster.start_to_balanced")
	if why := spread(b, []int{2, 2, 2}); why != "" {
		t.Error(why)
	}
	// Every node lists the same holders as the kernels show.
	held := holders(t, b)
	for i := range b.Nodes() {
		ips, err := b.IPs(ctx(t, 10*time.Second), i)
		if err != nil {
			t.Fatal(err)
		}
		for ip, pnn := range ips {
			if !slices.Equal(held[ip], []int{pnn}) {
				t.Errorf("node %d's ctdb ip says %s on %d, kernels say %v", i, ip, pnn, held[ip])
			}
		}
	}
	// A stable cluster keeps still: no address changes holder for a few
	// lease times (leases are renewed, lifetimes refreshed, nothing moves).
	t0 := time.Now()
	time.Sleep(3 * leaseTime * time.Second)
	for _, e := range c.Events() {
		if e.At.After(t0) && !slices.Equal(e.Nodes, held[e.IP]) {
			t.Errorf("a stable cluster changed: %s at %s on %v (was %v) answered by %v", e.IP, e.At.Format(time.StampMilli), e.Nodes, held[e.IP], e.MACs)
		}
	}
	// Lifetimes are refreshed before they run out: no address ever
	// leaves its holder's kernel. (A lone missed ARP answer on a busy
	// host is not the daemon's doing, so only "no holder" counts.)
	for _, s := range c.Report().UnservedAfter(t0) {
		if strings.HasPrefix(s.Why, "no holder") {
			t.Errorf("a stable cluster dropped %s for %v from %s: %s", s.IP, s.Duration(), s.Start.Format(time.StampMilli), s.Why)
		}
	}
}

// TestClusterDisableEnable: `ctdb disable` moves the node's addresses
// away, `ctdb enable` brings the balance back.
func TestClusterDisableEnable(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3}, "")
	const n = 1
	mine := heldBy(t, b, n)
	if len(mine) == 0 {
		t.Fatalf("node %d holds nothing before disable", n)
	}
	w := moveWatch(t, b, n, mine)
	t0 := time.Now()
	if out, err := b.Ctdb(n, "disable"); err != nil || out.Code != 0 {
		t.Fatalf("ctdb disable: %v, %v", out, err)
	}
	_, slowest := waitMoved(t, b, w, t0, 10*time.Second)
	measure(t, "cluster.disable_to_served_elsewhere", slowest)
	cx := ctx(t, 10*time.Second)
	if err := poll(cx, 10*time.Millisecond, func() string {
		if why := spread(b, []int{3, 0, 3}); why != "" {
			return why
		}
		f, err := flagsOf(cx, b, 0, n)
		if err != nil {
			return err.Error()
		}
		if f&nodeflag.PermanentlyDisabled == 0 {
			return fmt.Sprintf("node 0 sees node %d as %v, want DISABLED", n, f)
		}
		return ""
	}); err != nil {
		t.Fatalf("after disable: %v", err)
	}
	measure(t, "cluster.disable_max_unserved", c.Report().MaxUnserved(t0))

	t1 := time.Now()
	if out, err := b.Ctdb(n, "enable"); err != nil || out.Code != 0 {
		t.Fatalf("ctdb enable: %v, %v", out, err)
	}
	if err := waitBalanced(t, b, t1, "cluster.enable_to_balanced", 20*time.Second); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	measure(t, "cluster.enable_max_unserved", c.Report().MaxUnserved(t1))
}

// TestClusterPublicCable: a node's public cable pulled: its addresses
// answer ARP from the other nodes; restored: balanced again.
func TestClusterPublicCable(t *testing.T) {
	b, _ := cluster(t, bed.Config{Nodes: 3}, "")
	const n = 1
	mine := heldBy(t, b, n)
	w := moveWatch(t, b, n, mine)
	t0 := time.Now()
	if err := b.PullPublic(n); err != nil {
		t.Fatal(err)
	}
	_, slowest := waitMoved(t, b, w, t0, 10*time.Second)
	measure(t, "cluster.public_pull_to_served_elsewhere", slowest)
	cx := ctx(t, 10*time.Second)
	if err := poll(cx, 10*time.Millisecond, func() string {
		if why := servedBy(b, others(b, n)); why != "" {
			return why
		}
		f, err := flagsOf(cx, b, 0, n)
		if err != nil {
			return err.Error()
		}
		if f&nodeflag.Unhealthy == 0 {
			return fmt.Sprintf("node 0 sees node %d as %v, want UNHEALTHY", n, f)
		}
		return ""
	}); err != nil {
		t.Fatalf("with node %d's public cable out: %v", n, err)
	}

	t1 := time.Now()
	if err := b.RestorePublic(n); err != nil {
		t.Fatal(err)
	}
	if err := waitBalanced(t, b, t1, "cluster.public_restore_to_balanced", 30*time.Second); err != nil {
		t.Fatalf("after the cable came back: %v", err)
	}
}

// nodeFault is a fault on one node and how to undo it.
type nodeFault struct {
	name         string
	inject, undo func(b *bed.Bed, n int) error
}

var nodeFaults = []nodeFault{
	{
		name:   "sigkill",
		inject: func(b *bed.Bed, n int) error { return b.Kill(n) },
		undo:   func(b *bed.Bed, n int) error { return b.Start(n) },
	},
	{
		name:   "sigstop",
		inject: func(b *bed.Bed, n int) error { return b.Stop(n) },
		undo:   func(b *bed.Bed, n int) error { return b.Cont(n) },
	},
	{
		name:   "private_cable",
		inject: func(b *bed.Bed, n int) error { return b.PullPrivate(n) },
		undo:   func(b *bed.Bed, n int) error { return b.RestorePrivate(n) },
	},
}

// TestClusterNodeFailure: SIGKILL, SIGSTOP and a pulled private cable on a
// node that is not the leader: its addresses answer ARP from the other
// nodes (after its lease ran out), never from two nodes at once; once the
// fault is undone the cluster is balanced again.
func TestClusterNodeFailure(t *testing.T) {
	for _, f := range nodeFaults {
		t.Run(f.name, func(t *testing.T) {
			b, c := cluster(t, bed.Config{Nodes: 3}, "")
			l := agreedLeader(t, b, []int{0, 1, 2})
			n := (l + 1) % b.Nodes()
			mine := heldBy(t, b, n)
			t.Logf("leader %d; fault on node %d, which holds %v", l, n, mine)
			w := moveWatch(t, b, n, mine)
			t0 := time.Now()
			if err := f.inject(b, n); err != nil {
				t.Fatal(err)
			}
			_, slowest := waitMoved(t, b, w, t0, 15*time.Second)
			t.Logf("slowest move %v; LeaseTime+1s = %v", slowest.Round(time.Millisecond), leaseTime*time.Second+time.Second)
			measure(t, "cluster."+f.name+"_nonleader_to_served_elsewhere", slowest)
			if err := poll(ctx(t, 15*time.Second), 10*time.Millisecond, func() string {
				return servedBy(b, others(b, n))
			}); err != nil {
				t.Fatalf("after the fault on node %d: %v", n, err)
			}
			if r := c.Report(); r.Err() != nil {
				t.Fatalf("during the fault: %v", r.Err())
			}

			// The survivors keep the leader they had.
			if got := agreedLeader(t, b, others(b, n)); got != l {
				t.Errorf("leader %d after the fault on node %d, was %d", got, n, l)
			}

			t1 := time.Now()
			if err := f.undo(b, n); err != nil {
				t.Fatal(err)
			}
			if err := waitBalanced(t, b, t1, "cluster."+f.name+"_undo_to_balanced", 30*time.Second); err != nil {
				t.Fatalf("after undoing the fault: %v", err)
			}
			if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClusterLeaderKilled: the leader SIGKILLed: another node becomes
// leader; addresses on the surviving nodes never move.
func TestClusterLeaderKilled(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3}, "")
	l := agreedLeader(t, b, []int{0, 1, 2})
	before := holders(t, b)
	mine := heldBy(t, b, l)
	survivors := others(b, l)
	t.Logf("leader %d holds %v; holders before %v", l, mine, before)

	w := moveWatch(t, b, l, mine)
	t0 := time.Now()
	if err := b.Kill(l); err != nil {
		t.Fatal(err)
	}
	newLeader := -1
	var tLeader time.Duration
	cx := ctx(t, 20*time.Second)
	if err := poll(cx, 20*time.Millisecond, func() string {
		newLeader = -1
		for _, i := range survivors {
			n, err := leaderOf(cx, b, i)
			if err != nil {
				return err.Error()
			}
			if n < 0 || n == l || newLeader >= 0 && n != newLeader {
				return fmt.Sprintf("node %d says the leader is %d", i, n)
			}
			newLeader = n
		}
		tLeader = time.Since(t0)
		return ""
	}); err != nil {
		t.Fatalf("no new leader after the leader was killed: %v", err)
	}
	measure(t, "cluster.leader_kill_to_new_leader", tLeader)
	if !slices.Contains(survivors, newLeader) {
		t.Errorf("new leader %d is not a survivor %v", newLeader, survivors)
	}
	_, slowest := waitMoved(t, b, w, t0, 20*time.Second)
	measure(t, "cluster.leader_kill_to_served_elsewhere", slowest)
	if err := poll(ctx(t, 15*time.Second), 10*time.Millisecond, func() string {
		return servedBy(b, survivors)
	}); err != nil {
		t.Fatalf("after the leader was killed: %v", err)
	}
	// Settle, then check that no address of a survivor ever moved.
	time.Sleep(leaseTime * time.Second)
	for ip, hs := range before {
		if len(hs) != 1 || hs[0] == l {
			continue
		}
		for _, e := range c.Events() {
			if e.IP == ip && e.At.After(t0) && !slices.Equal(e.Nodes, hs) {
				t.Errorf("%s, on survivor %d, moved: at %s on %v answered by %v", ip, hs[0], e.At.Format(time.StampMilli), e.Nodes, e.MACs)
			}
		}
	}
	now := holders(t, b)
	for ip, hs := range before {
		if len(hs) == 1 && hs[0] != l && !slices.Equal(now[ip], hs) {
			t.Errorf("%s was on survivor %v, now on %v", ip, hs, now[ip])
		}
	}

	// The old leader comes back as an ordinary node.
	t1 := time.Now()
	if err := b.Start(l); err != nil {
		t.Fatal(err)
	}
	if err := waitBalanced(t, b, t1, "cluster.leader_restart_to_balanced", 30*time.Second); err != nil {
		t.Fatalf("after restarting the old leader: %v", err)
	}
}

// TestClusterLeaderPrivateCable: the leader cut off from the others: it
// loses quorum, the two others serve every address, never two nodes at
// once; with the cable back the cluster is balanced again.
func TestClusterLeaderPrivateCable(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3}, "")
	l := agreedLeader(t, b, []int{0, 1, 2})
	mine := heldBy(t, b, l)
	rest := others(b, l)
	t.Logf("leader %d holds %v", l, mine)
	w := moveWatch(t, b, l, mine)
	t0 := time.Now()
	if err := b.PullPrivate(l); err != nil {
		t.Fatal(err)
	}
	_, slowest := waitMoved(t, b, w, t0, 20*time.Second)
	t.Logf("slowest move %v; 2×LeaseTime+1s = %v", slowest.Round(time.Millisecond), 2*leaseTime*time.Second+time.Second)
	measure(t, "cluster.leader_private_pull_to_served_elsewhere", slowest)
	var tAll time.Duration
	if err := poll(ctx(t, 20*time.Second), 10*time.Millisecond, func() string {
		if why := servedBy(b, rest); why != "" {
			return why
		}
		tAll = time.Since(t0)
		return ""
	}); err != nil {
		t.Fatalf("with the leader's private cable out: %v", err)
	}
	measure(t, "cluster.leader_private_pull_to_all_on_others", tAll)
	nl := agreedLeader(t, b, rest)
	if nl == l {
		t.Errorf("the cut-off node %d is still the others' leader", l)
	}
	if r := c.Report(); r.Err() != nil {
		t.Fatalf("during the cut: %v", r.Err())
	}

	t1 := time.Now()
	if err := b.RestorePrivate(l); err != nil {
		t.Fatal(err)
	}
	if err := waitBalanced(t, b, t1, "cluster.leader_private_restore_to_balanced", 30*time.Second); err != nil {
		t.Fatalf("after the cable came back: %v", err)
	}
	if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestClusterPartition: one node partitioned away from the other two (links
// stay up, only silence) and healed: every address on one node at every
// sample, the majority serves everything, and balance is back after the
// heal. Once with a non-leader cut off, once with the leader.
func TestClusterPartition(t *testing.T) {
	for _, which := range []string{"nonleader", "leader"} {
		t.Run(which, func(t *testing.T) {
			b, c := cluster(t, bed.Config{Nodes: 3}, "")
			l := agreedLeader(t, b, []int{0, 1, 2})
			n := l
			if which == "nonleader" {
				n = (l + 1) % b.Nodes()
			}
			mine := heldBy(t, b, n)
			rest := others(b, n)
			t.Logf("leader %d; node %d cut off, holding %v", l, n, mine)
			w := moveWatch(t, b, n, mine)
			t0 := time.Now()
			if err := b.Partition([]int{n}); err != nil {
				t.Fatal(err)
			}
			_, slowest := waitMoved(t, b, w, t0, 20*time.Second)
			measure(t, "cluster.partition_"+which+"_to_served_elsewhere", slowest)
			if err := poll(ctx(t, 20*time.Second), 10*time.Millisecond, func() string {
				return servedBy(b, rest)
			}); err != nil {
				t.Fatalf("during the partition: %v", err)
			}
			// Hold the partition for a few lease times: the cut-off
			// node must not take anything back.
			time.Sleep(2 * leaseTime * time.Second)
			if why := servedBy(b, rest); why != "" {
				t.Errorf("partition held for %ds: %s", 2*leaseTime, why)
			}
			if r := c.Report(); r.Err() != nil {
				t.Fatalf("during the partition: %v", r.Err())
			}

			t1 := time.Now()
			if err := b.Heal(); err != nil {
				t.Fatal(err)
			}
			if err := waitBalanced(t, b, t1, "cluster.partition_"+which+"_heal_to_balanced", 30*time.Second); err != nil {
				t.Fatalf("after the heal: %v", err)
			}
			if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// addrs900 are 900 public addresses in 198.18.4.0/22 (the client gets an
// on-link route for it from the bed).
func addrs900() []netip.Prefix {
	var out []netip.Prefix
	a := netip.MustParseAddr("198.18.4.1")
	for range 900 {
		out = append(out, netip.PrefixFrom(a, 22))
		a = a.Next()
	}
	return out
}

// TestCluster900: 900 addresses on three nodes: start to 300/300/300,
// `ctdb disable` re-homes all, `ctdb enable` brings the balance back; the
// checker's longest unserved span during each is logged (goal ≤ 0.5 s).
func TestCluster900(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3, PublicAddrs: addrs900()}, "cluster900.start_to_balanced")
	if why := spread(b, []int{300, 300, 300}); why != "" {
		t.Fatal(why)
	}
	const n = 1
	t0 := time.Now()
	if out, err := b.Ctdb(n, "disable"); err != nil || out.Code != 0 {
		t.Fatalf("ctdb disable: %v, %v", out, err)
	}
	// Re-homed: every address on exactly one of the two others.
	if err := poll(ctx(t, 30*time.Second), 10*time.Millisecond, func() string {
		return servedBy(b, others(b, n))
	}); err != nil {
		t.Fatalf("after disable: %v", err)
	}
	measure(t, "cluster900.disable_to_rehomed", time.Since(t0))
	t.Logf("addresses per node after disable: %v", perNode(t, b))
	// Let the checker sample the final state, then read the spans.
	time.Sleep(200 * time.Millisecond)
	r := c.Report()
	measure(t, "cluster900.disable_max_unserved", r.MaxUnserved(t0))
	logSpans(t, r, t0)

	t1 := time.Now()
	if out, err := b.Ctdb(n, "enable"); err != nil || out.Code != 0 {
		t.Fatalf("ctdb enable: %v, %v", out, err)
	}
	// 300/300/300: with 900 addresses "balanced" (within one) is exact.
	if err := poll(ctx(t, 30*time.Second), 10*time.Millisecond, func() string {
		return spread(b, []int{300, 300, 300})
	}); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	measure(t, "cluster900.enable_to_balanced", time.Since(t1))
	time.Sleep(200 * time.Millisecond)
	r = c.Report()
	measure(t, "cluster900.enable_max_unserved", r.MaxUnserved(t1))
	measure(t, "cluster900.checker_longest_round", r.LongestRound)
	logSpans(t, r, t1)
}

// logSpans logs how many unserved spans began after t0 and the longest
// few.
func logSpans(t *testing.T, r bed.Report, t0 time.Time) {
	t.Helper()
	spans := r.UnservedAfter(t0)
	slices.SortFunc(spans, func(a, b bed.Span) int { return int(b.Duration() - a.Duration()) })
	t.Logf("%d unserved spans after %s", len(spans), t0.Format(time.StampMilli))
	for _, s := range spans[:min(5, len(spans))] {
		t.Logf("  %s unserved %v (%s … %s, open %v): %s", s.IP, s.Duration().Round(time.Millisecond), s.Start.Format(time.StampMilli), s.End.Format(time.StampMilli), s.Open, s.Why)
	}
}
