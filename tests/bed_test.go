//go:build integration

package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// These tests prove the test bed on its own, with no ctdbd: the topology,
// its teardown, the faults, ARP from the client and the invariant checker
// (which must be able to fail), and node control with a fake daemon.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

// newBed builds a bed closed at the end of the test; the root namespace is
// checked clean before and after.
func newBed(t *testing.T, cfg bed.Config) *bed.Bed {
	t.Helper()
	needRoot(t)
	before := rootState(t)
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	b, err := bed.New(cfg)
	if err != nil {
		t.Fatalf("bed.New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, ns := range b.Namespaces() {
			if _, err := os.Stat(filepath.Join("/run/netns", ns)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Close: namespace %s still exists (stat: %v)", ns, err)
			}
		}
		if diff := cmp.Diff(before, rootState(t)); diff != "" {
			t.Errorf("root namespace changed by the bed (-before +after):\n%s", diff)
		}
	})
	return b
}

// rootNet is what the root namespace has on the test networks (it must
// have nothing), and its links (the bed must add none).
type rootNet struct {
	Links       []string
	TestAddrs   []string
	TestRoutes  []string
	TestNeigh   []string
	TestNetUsed bool
}

// rootState reads the root namespace (the one this process started in)
// through netlink; it changes nothing.
func rootState(t *testing.T) rootNet {
	t.Helper()
	ns, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatalf("root namespace: %v", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in the root namespace: %v", err)
	}
	defer h.Close()
	var st rootNet
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("root links: %v", err)
	}
	for _, l := range links {
		st.Links = append(st.Links, l.Attrs().Name)
	}
	slices.Sort(st.Links)
	inTest := func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && bed.TestNet.Contains(a.Unmap())
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("root addresses: %v", err)
	}
	for _, a := range addrs {
		if inTest(a.IP) {
			st.TestAddrs = append(st.TestAddrs, a.String())
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("root routes: %v", err)
	}
	for _, r := range routes {
		if r.Dst != nil && inTest(r.Dst.IP) || inTest(r.Gw) || inTest(r.Src) {
			st.TestRoutes = append(st.TestRoutes, r.String())
		}
	}
	neigh, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("root neighbours: %v", err)
	}
	for _, n := range neigh {
		if inTest(n.IP) {
			st.TestNeigh = append(st.TestNeigh, n.String())
		}
	}
	return st
}

func assertRootClean(t *testing.T, when string) {
	t.Helper()
	st := rootState(t)
	if len(st.TestAddrs)+len(st.TestRoutes)+len(st.TestNeigh) > 0 {
		t.Errorf("%s: root namespace has test-network state: addresses %v, routes %v, neighbours %v", when, st.TestAddrs, st.TestRoutes, st.TestNeigh)
	}
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func TestBedTopology(t *testing.T) {
	needRoot(t)
	assertRootClean(t, "before")
	b := newBed(t, bed.Config{Nodes: 3})
	assertRootClean(t, "after New")

	// The switch bridges frames without netfilter (where br_netfilter
	// is loaded at all, and its sysctls are per namespace: Linux 5.3);
	// the root namespace keeps its setting.
	const nf = "/proc/sys/net/bridge/bridge-nf-call-arptables"
	if root, err := os.ReadFile(nf); err == nil {
		var u unix.Utsname
		var major, minor int
		_ = unix.Uname(&u)
		fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
		out, err := b.Exec(b.SwitchNS(), "cat", nf)
		if (major > 5 || major == 5 && minor >= 3) && (err != nil || strings.TrimSpace(out.Stdout) != "0") {
			t.Errorf("switch %s = %q, %v; want 0", nf, out.Stdout, err)
		}
		if again, _ := os.ReadFile(nf); string(again) != string(root) {
			t.Errorf("root namespace %s changed from %q to %q", nf, root, again)
		}
	}

	for _, ns := range b.Namespaces() {
		if !strings.HasPrefix(ns, fmt.Sprintf("%s%d-", bed.DefaultPrefix, os.Getpid())) {
			t.Errorf("namespace %s: want prefix %s<pid>-", ns, bed.DefaultPrefix)
		}
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
	}
	for i := range b.Nodes() {
		h, err := b.Netlink(b.NodeNS(i))
		if err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName(bed.PrivateIface)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		as, err := h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range as {
			got = append(got, a.IPNet.String())
		}
		want := []string{fmt.Sprintf("198.18.0.%d/24", i+1)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("node %d eth0 addresses (-want +got):\n%s", i, diff)
		}
		pub, err := b.NodeAddrs(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(pub) != 0 {
			t.Errorf("node %d eth1 addresses = %v, want none", i, pub)
		}
		for _, iface := range []string{bed.PrivateIface, bed.PublicIface} {
			up, err := b.Carrier(i, iface)
			if err != nil || !up {
				t.Errorf("node %d %s carrier = %v, %v; want up", i, iface, up, err)
			}
		}
		if b.NodeMAC(i) == nil || b.NodeByMAC(b.NodeMAC(i)) != i {
			t.Errorf("node %d MAC %v maps back to node %d", i, b.NodeMAC(i), b.NodeByMAC(b.NodeMAC(i)))
		}
		br, err := b.PortBridge(i)
		if err != nil || br != "br-priv" {
			t.Errorf("node %d private port on %q, %v; want br-priv", i, br, err)
		}
	}

	// Config files: the nodes file and public addresses as CTDB reads them.
	np := b.Paths(1)
	nodes, err := os.ReadFile(filepath.Join(np.Config, "nodes"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(nodes), "198.18.0.1\n198.18.0.2\n198.18.0.3\n"; got != want {
		t.Errorf("nodes = %q, want %q", got, want)
	}
	pa, err := os.ReadFile(filepath.Join(np.Config, "public_addresses"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(pa), " eth1\n"); got != 6 {
		t.Errorf("public_addresses has %d eth1 lines, want 6:\n%s", got, pa)
	}
	for _, d := range []string{np.Run, np.State, filepath.Join(np.Config, "events.d")} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s: not a directory (%v)", d, err)
		}
	}

	// Exec runs inside the namespace: the node sees its own eth0.
	out, err := b.Exec(b.NodeNS(2), "ip", "-4", "-br", "addr", "show", "dev", "eth0")
	if err != nil || out.Code != 0 || !strings.Contains(out.Stdout, "198.18.0.3/24") {
		t.Errorf("Exec in node 2: %v, %v; want 198.18.0.3/24", out, err)
	}

	dir := b.Dir()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s still there after Close (%v)", dir, err)
	}
	for _, ns := range b.Namespaces() {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still there after Close (%v)", ns, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertRootClean(t, "after Close")
}

func TestBedARPAndChecker(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 3})
	vip := b.PublicAddrs()[0]
	ip := vip.Addr()

	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	// Nobody holds it: one request, no answer.
	macs, err := b.ARPAll(ctx(t, 5*time.Second), ip, 50*time.Millisecond)
	if err != nil || len(macs) != 0 {
		t.Errorf("ARPAll(%s) with no holder = %v, %v; want no answer", ip, macs, err)
	}

	// Node 1 holds it: the client's ARP is answered by node 1's MAC.
	if err := b.AddAddr(1, vip); err != nil {
		t.Fatal(err)
	}
	mac, err := b.ARP(ctx(t, 5*time.Second), ip)
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != b.NodeMAC(1).String() {
		t.Errorf("ARP(%s) = %v, want node 1's %v", ip, mac, b.NodeMAC(1))
	}
	held, err := b.NodeAddrs(1)
	if err != nil || !slices.Contains(held, vip) {
		t.Errorf("NodeAddrs(1) = %v, %v; want %v among them", held, err, vip)
	}
	at, err := c.WaitServedBy(ctx(t, 5*time.Second), ip, b.NodeMAC(1), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checker saw %s answered by node 1 at %s", ip, at.Format(time.StampMicro))
	if _, err := c.WaitEvent(ctx(t, 5*time.Second), time.Time{}, func(e bed.Event) bool {
		return e.IP == ip && slices.Equal(e.Nodes, []int{1}) && len(e.MACs) == 1
	}); err != nil {
		t.Fatal(err)
	}
	if r := c.Report(); r.DuplicateSamples != 0 {
		t.Fatalf("duplicate before there is one: %s", r)
	}

	// Node 2 too: two holders, two MACs. The checker must say so.
	if err := b.AddAddr(2, vip); err != nil {
		t.Fatal(err)
	}
	macs, err = b.ARPAll(ctx(t, 5*time.Second), ip, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{b.NodeMAC(1).String(), b.NodeMAC(2).String()}
	slices.Sort(want)
	var got []string
	for _, m := range macs {
		got = append(got, m.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ARPAll with two holders (-want +got):\n%s", diff)
	}
	r, err := c.WaitReport(ctx(t, 5*time.Second), func(r bed.Report) bool {
		return r.AddrDuplicates > 0 && r.ARPDuplicates > 0
	})
	if err != nil {
		t.Fatalf("checker never saw the duplicate: %v\n%s", err, r)
	}
	if r.Err() == nil {
		t.Errorf("Report.Err() = nil with %d duplicate samples", r.DuplicateSamples)
	}
	var kinds []string
	for _, d := range r.Examples {
		if d.IP != ip || !slices.Equal(d.Node, []int{1, 2}) {
			t.Errorf("duplicate example %s: want %s on nodes [1 2]", d, ip)
		}
		if !slices.Contains(kinds, d.Kind) {
			kinds = append(kinds, d.Kind)
		}
	}
	slices.Sort(kinds)
	if diff := cmp.Diff([]string{bed.DupAddress, bed.DupARP}, kinds); diff != "" {
		t.Errorf("duplicate kinds (-want +got):\n%s", diff)
	}

	// Removed from both: unserved, and a span records it.
	removed := time.Now()
	for _, i := range []int{1, 2} {
		if err := b.DelAddr(i, vip); err != nil {
			t.Fatal(err)
		}
	}
	// A round may catch the deletes half done; wait for one that sees
	// nobody at all.
	if _, err := c.WaitEvent(ctx(t, 5*time.Second), removed, func(e bed.Event) bool {
		return e.IP == ip && len(e.Nodes) == 0 && len(e.MACs) == 0
	}); err != nil {
		t.Fatal(err)
	}
	// Back on node 0: the span closes.
	if err := b.AddAddr(0, vip); err != nil {
		t.Fatal(err)
	}
	back, err := c.WaitServedBy(ctx(t, 5*time.Second), ip, b.NodeMAC(0), removed)
	if err != nil {
		t.Fatal(err)
	}
	rep := c.Stop()
	t.Logf("%s", rep)
	if rep.DuplicateSamples == 0 || rep.Samples == 0 {
		t.Errorf("final report lost the duplicate: %s", rep)
	}
	var span *bed.Span
	for _, s := range rep.Unserved[ip] {
		if !s.Start.Before(removed) {
			span = &s
		}
	}
	switch {
	case span == nil:
		t.Errorf("no unserved span of %s after the removal: %v", ip, rep.Unserved[ip])
	case span.Open || span.End.Before(span.Start) || span.End.After(back.Add(100*time.Millisecond)) || span.LastServed.IsZero():
		t.Errorf("span %+v: want closed, ending when node 0 answered (%s), with a last-served time", *span, back.Format(time.StampMicro))
	}
	if got := rep.MaxUnserved(removed); got <= 0 || got < span.Duration() {
		t.Errorf("MaxUnserved(after removal) = %v, want ≥ the span's %v", got, span.Duration())
	}
	// The other addresses were never served: their spans are open.
	for _, p := range b.PublicAddrs()[1:] {
		if s := rep.Unserved[p.Addr()]; len(s) != 1 || !s[0].Open || s[0].Why != "no holder, no ARP answer" {
			t.Errorf("%s never served: spans %+v, want one open span", p.Addr(), s)
		}
	}
	// Events: node 1, nodes 1 and 2, nobody, node 0.
	var seq []string
	for _, e := range c.Events() {
		if e.IP == ip {
			seq = append(seq, fmt.Sprint(e.Nodes))
		}
	}
	seq = slices.Compact(seq)
	if !isSubsequence([]string{"[1]", "[1 2]", "[]", "[0]"}, seq) {
		t.Errorf("holder events for %s = %v, want [1] then [1 2] then [] then [0]", ip, seq)
	}
	assertRootClean(t, "after ARP probes")
}

// A failover done by hand: WatchARP, armed before, times the answer from
// the new holder and ignores the old one.
func TestBedWatchARP(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 3})
	vips := b.PublicAddrs()[:2]
	for _, p := range vips {
		if err := b.AddAddr(1, p); err != nil {
			t.Fatal(err)
		}
	}
	old := b.NodeMAC(1).String()
	w, err := b.WatchARP([]netip.Addr{vips[0].Addr(), vips[1].Addr()}, time.Millisecond, func(_ netip.Addr, hw net.HardwareAddr) bool {
		return hw.String() != old
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Node 1 keeps answering for a while: nothing may be recorded.
	if got, err := w.Wait(ctx(t, 100*time.Millisecond)); len(got) != 0 || err == nil {
		t.Fatalf("WatchARP before the move = %v, %v; want nothing yet", got, err)
	}
	t0 := time.Now()
	for i, p := range vips {
		if err := b.DelAddr(1, p); err != nil {
			t.Fatal(err)
		}
		if err := b.AddAddr(i*2, p); err != nil { // to nodes 0 and 2
			t.Fatal(err)
		}
	}
	got, err := w.Wait(ctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range vips {
		a := got[p.Addr()]
		if n := b.NodeByMAC(a.MAC); n != i*2 {
			t.Errorf("%s answered by node %d, want %d", p.Addr(), n, i*2)
		}
		if a.At.Before(t0) {
			t.Errorf("%s answer stamped %v before the move", p.Addr(), t0.Sub(a.At))
		}
		t.Logf("%s answered by node %d %v after the move began", p.Addr(), i*2, a.At.Sub(t0))
	}
}

// The checker at the scale of the disable-900 benchmark: 900 addresses in
// a /22 outside the client's subnet (so the client needs its on-link
// route), every one answered in every sample, none twice.
func TestBedChecker900(t *testing.T) {
	var vips []netip.Prefix
	a := netip.MustParseAddr("198.18.4.1")
	for range 900 {
		vips = append(vips, netip.PrefixFrom(a, 22))
		a = a.Next()
	}
	b := newBed(t, bed.Config{Nodes: 3, PublicAddrs: vips})
	for k, p := range vips {
		if err := b.AddAddr(k%3, p); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := c.WaitReport(ctx(t, 20*time.Second), func(r bed.Report) bool { return r.Samples >= 10 })
	if err != nil {
		t.Fatal(err)
	}
	rep := c.Stop()
	t.Logf("%d samples in %v; %s", r.Samples, time.Since(start), rep)
	if rep.Errors != 0 || rep.DuplicateSamples != 0 || rep.Unconfirmed != 0 {
		t.Errorf("checker: %s", rep)
	}
	// Every address served from the first sample on.
	for ip, spans := range rep.Unserved {
		t.Errorf("%s unserved: %+v", ip, spans)
		break
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestBedCables(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 2})
	carrier := func(i int, iface string) bool {
		t.Helper()
		up, err := b.Carrier(i, iface)
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	for _, tc := range []struct {
		name          string
		iface         string
		pull, restore func(int) error
	}{
		{"public", bed.PublicIface, b.PullPublic, b.RestorePublic},
		{"private", bed.PrivateIface, b.PullPrivate, b.RestorePrivate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.pull(1); err != nil {
				t.Fatal(err)
			}
			// veth drops the peer's carrier inside the syscall.
			if carrier(1, tc.iface) {
				t.Errorf("node 1 %s has carrier after the pull", tc.iface)
			}
			if !carrier(0, tc.iface) {
				t.Errorf("node 0 %s lost carrier with node 1's cable", tc.iface)
			}
			other := bed.PublicIface
			if tc.iface == bed.PublicIface {
				other = bed.PrivateIface
			}
			if !carrier(1, other) {
				t.Errorf("node 1 %s lost carrier with its %s cable", other, tc.name)
			}
			if err := tc.restore(1); err != nil {
				t.Fatal(err)
			}
			if !carrier(1, tc.iface) {
				t.Errorf("node 1 %s has no carrier after restore", tc.iface)
			}
		})
	}

	// A pulled public cable silences the node's ARP answers.
	vip := b.PublicAddrs()[0]
	if err := b.AddAddr(1, vip); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ARP(ctx(t, 5*time.Second), vip.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := b.PullPublic(1); err != nil {
		t.Fatal(err)
	}
	if macs, err := b.ARPAll(ctx(t, 5*time.Second), vip.Addr(), 100*time.Millisecond); err != nil || len(macs) != 0 {
		t.Errorf("ARP with node 1's cable pulled = %v, %v; want no answer", macs, err)
	}
}

// udpProbe is a UDP socket opened in a namespace.
type udpProbe struct{ c *net.UDPConn }

func listenUDP(t *testing.T, b *bed.Bed, ns string, addr netip.AddrPort) udpProbe {
	t.Helper()
	var c *net.UDPConn
	if err := b.InNS(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return udpProbe{c}
}

// reaches sends from 'from' to 'to' every 20 ms until one arrives or wait
// passes.
func reaches(from, to udpProbe, wait time.Duration) bool {
	msg := fmt.Sprintf("probe %d", time.Now().UnixNano())
	deadline := time.Now().Add(wait)
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		from.c.WriteToUDPAddrPort([]byte(msg), to.c.LocalAddr().(*net.UDPAddr).AddrPort())
		to.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		for {
			n, err := to.c.Read(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg {
				return true
			}
		}
	}
	return false
}

func TestBedPartition(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 4})
	probes := make([]udpProbe, b.Nodes())
	for i := range probes {
		probes[i] = listenUDP(t, b, b.NodeNS(i), netip.AddrPortFrom(b.NodeAddr(i), 4380))
	}
	check := func(t *testing.T, group map[int]int) {
		t.Helper()
		for i := range probes {
			for j := range probes {
				if i == j {
					continue
				}
				same := group[i] == group[j]
				// A positive answer may take an ARP round; a negative
				// one waits a fixed while that cannot make it pass.
				wait := 300 * time.Millisecond
				if same {
					wait = 5 * time.Second
				}
				if got := reaches(probes[i], probes[j], wait); got != same {
					t.Errorf("node %d → node %d reachable = %v, want %v", i, j, got, same)
				}
			}
		}
	}
	t.Run("whole", func(t *testing.T) { check(t, map[int]int{}) })
	if err := b.Partition([]int{0}, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	t.Run("partitioned", func(t *testing.T) {
		// Node 3 is in no group: it stays on br-priv, alone.
		check(t, map[int]int{0: 1, 1: 2, 2: 2, 3: 0})
		for i, want := range []string{"br-part0", "br-part1", "br-part1", "br-priv"} {
			if got, err := b.PortBridge(i); err != nil || got != want {
				t.Errorf("node %d on %q, %v; want %s", i, got, err, want)
			}
			if up, err := b.Carrier(i, bed.PrivateIface); err != nil || !up {
				t.Errorf("node %d eth0 carrier %v, %v during a partition; want up", i, up, err)
			}
		}
	})
	if err := b.Partition([]int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	t.Run("repartitioned", func(t *testing.T) { check(t, map[int]int{0: 1, 1: 1, 2: 2, 3: 2}) })
	if err := b.Partition([]int{0}, []int{0}); err == nil {
		t.Error("Partition with a node in two groups: no error")
	}
	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	t.Run("healed", func(t *testing.T) {
		check(t, map[int]int{})
		noPartitionBridges(t, b)
	})
	assertRootClean(t, "after partition probes")
}

// fakeCtdbd stands in for ctdbd: it finds its PNN from the nodes file,
// takes the public addresses k with k mod nodes == PNN, marks itself ready
// and waits for SIGTERM.
const fakeCtdbd = `#!/bin/sh
set -eu
conf='' run=''
while [ $# -gt 0 ]; do
	case "$1" in
	--config-dir) conf=$2; shift ;;
	--run-dir) run=$2; shift ;;
	esac
	shift
done
echo "fake ctdbd: CTDB_BASE=$CTDB_BASE config $conf run $run"
me=$(ip -4 -br addr show dev eth0 | { read -r _ _ a _; echo "${a%/*}"; })
n=0 pnn=-1
while read -r a; do
	[ "$a" = "$me" ] && pnn=$n
	n=$((n + 1))
done < "$conf/nodes"
echo "fake ctdbd: node $pnn of $n"
k=0
while read -r addr iface; do
	[ $((k % n)) -eq "$pnn" ] && ip addr add "$addr" dev "$iface"
	k=$((k + 1))
done < "$conf/public_addresses"
trap 'rm -f "$run/ready"; echo "fake ctdbd: TERM"; exit 0' TERM
echo $$ > "$run/ready"
while :; do sleep 0.05; done
`

// fakeCtdb answers -X status and -X ip all like ctdb, from the fake
// daemons' ready files.
const fakeCtdb = `#!/bin/sh
set -eu
[ "$1" = --socket ] || { echo "want --socket first" >&2; exit 2; }
socket=$2; shift 2
[ "$socket" = "$CTDB_SOCKET" ] || { echo "socket $socket != CTDB_SOCKET" >&2; exit 2; }
root=$(dirname "$(dirname "$(dirname "$socket")")")
n=$(wc -l < "$CTDB_BASE/nodes")
ready() { kill -0 "$(cat "$root/n$1/run/ready" 2>/dev/null)" 2>/dev/null; }
case "$*" in
"-X status")
	echo "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|"
	i=0
	while read -r a; do
		d=1; ready "$i" && d=0
		echo "|$i|$a|$d|0|0|0|0|0|$d|0|N|"
		i=$((i + 1))
	done < "$CTDB_BASE/nodes"
	;;
"-X ip all")
	echo "|Public IP|Node|"
	k=0
	while read -r addr _; do
		h=$((k % n)); ready "$h" || h=-1
		echo "|${addr%/*}|$h|"
		k=$((k + 1))
	done < "$CTDB_BASE/public_addresses"
	;;
*) echo "fake ctdb: $*" ;;
esac
`

func fakeBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"ctdbd": fakeCtdbd, "ctdb": fakeCtdb} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(data)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

func TestBedNodeControl(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 3, Bin: fakeBin(t), EventScripts: map[string]string{"50.probe": "#!/bin/sh\nexit 0\n"}})
	if st, err := os.Stat(filepath.Join(b.Paths(0).Config, "events.d", "50.probe")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("events.d/50.probe: %v, %v; want mode 0755", st, err)
	}
	if err := b.StartAll(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(0); err == nil {
		t.Error("Start of a running node: no error")
	}
	if err := b.WaitHealthy(ctx(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	held, err := b.Holders()
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range b.PublicAddrs() {
		if got := held[p.Addr()]; !slices.Equal(got, []int{k % 3}) {
			t.Errorf("%s held by %v, want [%d]", p.Addr(), got, k%3)
		}
	}
	if log := b.Logs(1); !strings.Contains(log, "fake ctdbd: node 1 of 3") || !strings.Contains(log, "CTDB_BASE="+b.Paths(1).Config) {
		t.Errorf("node 1 log does not show it ran as node 1 with CTDB_BASE:\n%s", log)
	}
	st, err := b.Status(ctx(t, 10*time.Second), 2)
	if err != nil || len(st) != 3 || !st[2].OK() || st[2].Addr != b.NodeAddr(2) {
		t.Errorf("Status(2) = %+v, %v", st, err)
	}
	out, err := b.Ctdb(0, "pnn")
	if err != nil || out.Code != 0 || strings.TrimSpace(out.Stdout) != "fake ctdb: pnn" {
		t.Errorf("Ctdb(0, pnn) = %v, %v", out, err)
	}

	// SIGSTOP and SIGCONT: the kernel's view of the process.
	d := b.Daemon(1)
	if err := b.Stop(1); err != nil {
		t.Fatal(err)
	}
	waitState(t, d.PID, "T")
	if err := b.Cont(1); err != nil {
		t.Fatal(err)
	}
	waitState(t, d.PID, "S", "R")

	// SIGKILL: gone, and WaitFor does not take a kill for a crash.
	if err := b.Kill(1); err != nil {
		t.Fatal(err)
	}
	if exited, _ := d.Exited(); !exited || b.Running(1) {
		t.Errorf("after Kill: exited %v, running %v", exited, b.Running(1))
	}
	if err := b.WaitFor(ctx(t, 5*time.Second), "node 1 down", func(ctx context.Context) string {
		st, err := b.Status(ctx, 0)
		if err != nil {
			return err.Error()
		}
		if st[1].OK() {
			return "node 1 still OK"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	// The killed fake left its addresses (as a killed ctdbd would);
	// remove them so the restarted one can add them.
	for k, p := range b.PublicAddrs() {
		if k%3 == 1 {
			if err := b.DelAddr(1, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Start(1); err != nil {
		t.Fatal(err)
	}
	// Terminate: SIGTERM, clean exit; Restart brings it back.
	if err := b.Terminate(2); err != nil {
		t.Fatalf("Terminate(2): %v", err)
	}
	if !strings.Contains(b.Logs(2), "fake ctdbd: TERM") {
		t.Errorf("node 2 log has no TERM line:\n%s", b.Logs(2))
	}
	for k, p := range b.PublicAddrs() {
		if k%3 == 2 {
			if err := b.DelAddr(2, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Restart(2); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitHealthy(ctx(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}

	// A daemon that dies by itself: WaitHealthy names it. Node 0's
	// addresses are still configured, so the restarted fake's `ip addr
	// add` fails and it exits.
	if err := b.Restart(0); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitHealthy(ctx(t, 20*time.Second)); err == nil || !strings.Contains(err.Error(), "node 0: ctdbd exited") {
		t.Errorf("WaitHealthy with a crashed node 0 = %v, want it to name node 0's exit", err)
	}

	// Close kills what still runs.
	running := []*bed.Proc{b.Daemon(1), b.Daemon(2)}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range running {
		if exited, _ := p.Exited(); !exited {
			t.Errorf("%s (pid %d) still running after Close", p.Name, p.PID)
		}
	}
}

func osExec(argv ...string) (string, error) {
	out, err := osexec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

func waitState(t *testing.T, pid int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := procState(t, pid)
		if slices.Contains(want, got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d state %s, want one of %v", pid, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBedSweep(t *testing.T) {
	needRoot(t)
	// A PID that has exited: a child we started and reaped.
	c := osexec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	dead := c.Process.Pid
	prefix := "cgsweep"
	stale := fmt.Sprintf("%s%d-1-n0", prefix, dead)
	live := fmt.Sprintf("%s%d-1-n0", prefix, os.Getpid())
	other := prefix + "x-1-n0"
	for _, ns := range []string{stale, live, other} {
		if out, err := osExec("ip", "netns", "add", ns); err != nil {
			t.Fatalf("ip netns add %s: %v %s", ns, err, out)
		}
	}
	t.Cleanup(func() {
		for _, ns := range []string{stale, live, other} {
			osExec("ip", "netns", "delete", ns)
		}
	})
	removed, err := bed.Sweep(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) || slices.Contains(removed, live) || slices.Contains(removed, other) {
		t.Errorf("Sweep removed %v; want %s, not %s or %s", removed, stale, live, other)
	}
	for ns, want := range map[string]bool{stale: false, live: true, other: true} {
		_, err := os.Stat(filepath.Join("/run/netns", ns))
		if got := err == nil; got != want {
			t.Errorf("after Sweep %s exists = %v, want %v", ns, got, want)
		}
	}
}

func TestBedFullPartition(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 5})
	priv := make([]udpProbe, b.Nodes())
	pub := make([]udpProbe, b.Nodes())
	for i := range b.Nodes() {
		priv[i] = listenUDP(t, b, b.NodeNS(i), netip.AddrPortFrom(b.NodeAddr(i), 4380))
		// Each node gets one public address by hand, to be reached on.
		p := b.PublicAddrs()[i]
		if err := b.AddAddr(i, p); err != nil {
			t.Fatal(err)
		}
		pub[i] = listenUDP(t, b, b.NodeNS(i), netip.AddrPortFrom(p.Addr(), 4381))
	}
	client := listenUDP(t, b, b.ClientNS(), netip.AddrPortFrom(bed.ClientAddr.Addr(), 4381))
	// check compares reachability with sides: node → side; nodes on one
	// side reach each other on both networks; the client reaches the
	// public ports of clientSide's nodes only.
	check := func(t *testing.T, side map[int]int, clientSide int) {
		t.Helper()
		wait := func(same bool) time.Duration {
			if same {
				return 5 * time.Second
			}
			return 300 * time.Millisecond
		}
		for i := range b.Nodes() {
			for j := range b.Nodes() {
				if i == j {
					continue
				}
				same := side[i] == side[j]
				if got := reaches(priv[i], priv[j], wait(same)); got != same {
					t.Errorf("private: node %d → node %d reachable = %v, want %v", i, j, got, same)
				}
				if got := reaches(pub[i], pub[j], wait(same)); got != same {
					t.Errorf("public: node %d → node %d reachable = %v, want %v", i, j, got, same)
				}
			}
			same := side[i] == clientSide
			if got := reaches(client, pub[i], wait(same)); got != same {
				t.Errorf("public: client → node %d reachable = %v, want %v", i, got, same)
			}
			if up, err := b.Carrier(i, bed.PublicIface); err != nil || !up {
				t.Errorf("node %d eth1 carrier %v, %v; want up", i, up, err)
			}
		}
	}
	bridges := func(t *testing.T, wantPriv, wantPub []string) {
		t.Helper()
		for i := range b.Nodes() {
			if got, err := b.PortBridge(i); err != nil || got != wantPriv[i] {
				t.Errorf("node %d private port on %q, %v; want %s", i, got, err, wantPriv[i])
			}
			if got, err := b.PublicBridge(i); err != nil || got != wantPub[i] {
				t.Errorf("node %d public port on %q, %v; want %s", i, got, err, wantPub[i])
			}
		}
	}
	t.Run("whole", func(t *testing.T) { check(t, map[int]int{}, 0) })

	if err := b.FullPartition([]int{0}, []int{1}); err != nil {
		t.Fatal(err)
	}
	t.Run("minorities", func(t *testing.T) {
		// 2, 3 and 4 are in no group: the largest side, with the client.
		check(t, map[int]int{0: 1, 1: 2}, 0)
		bridges(t,
			[]string{"br-part0", "br-part1", "br-priv", "br-priv", "br-priv"},
			[]string{"br-pubpart0", "br-pubpart1", "br-pub", "br-pub", "br-pub"})
	})

	if err := b.FullPartition([]int{3}, []int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	t.Run("named majority", func(t *testing.T) {
		// The largest group keeps br-pub; node 4, in no group, is cut off
		// on its own.
		check(t, map[int]int{3: 1, 0: 2, 1: 2, 2: 2, 4: 0}, 2)
		bridges(t,
			[]string{"br-part1", "br-part1", "br-part1", "br-part0", "br-priv"},
			[]string{"br-pub", "br-pub", "br-pub", "br-pubpart0", "br-pubpart-rest"})
	})

	if err := b.Partition([]int{0}); err != nil {
		t.Fatal(err)
	}
	t.Run("private only after full", func(t *testing.T) {
		bridges(t,
			[]string{"br-part0", "br-priv", "br-priv", "br-priv", "br-priv"},
			[]string{"br-pub", "br-pub", "br-pub", "br-pub", "br-pub"})
	})

	if err := b.FullPartition([]int{4}); err != nil {
		t.Fatal(err)
	}
	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	t.Run("healed", func(t *testing.T) {
		check(t, map[int]int{}, 0)
		noPartitionBridges(t, b)
	})
	assertRootClean(t, "after full partition probes")
}

// noPartitionBridges fails t if a partition's bridge is left in the
// switch namespace.
func noPartitionBridges(t *testing.T, b *bed.Bed) {
	t.Helper()
	h, err := b.Netlink(b.SwitchNS())
	if err != nil {
		t.Fatal(err)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "br-part") || strings.HasPrefix(n, "br-pubpart") {
			t.Errorf("%s left after Heal", n)
		}
	}
}
