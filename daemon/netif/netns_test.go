//go:build integration

package netif

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A test bed of two network namespaces joined by a veth pair:
//
//	nif-<pid>-<n>a: eth1  <-- veth -->  nif-<pid>-<n>b: eth1p
//
// The namespaces are created by the test and removed in t.Cleanup; the root
// namespace gets nothing. Addresses come from 198.18.0.0/15 (and the IPv6
// benchmarking prefix 2001:2::/48).

var bedSeq atomic.Int32

// testNS is a named network namespace with a netlink handle into it.
type testNS struct {
	name string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

func newTestNS(t testing.TB, name string) *testNS {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	// NewNamed moves the calling thread into the new namespace: do it on a
	// throwaway thread (locked and never unlocked, so the runtime ends it).
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.NewNamed(name)
		ch <- result{ns, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("creating namespace %s: %v", name, r.err)
	}
	n := &testNS{name: name, ns: r.ns}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		n.ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(r.ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	n.nl = h
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("lo in %s: %v", name, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return n
}

// do runs fn on a thread inside n (a throwaway thread).
func (n *testNS) do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.ns); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

func (n *testNS) link(t testing.TB, name string) netlink.Link {
	t.Helper()
	lk, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("%s in %s: %v", name, n.name, err)
	}
	return lk
}

// addAddr adds p to iface in n without a lifetime (and without DAD for
// IPv6, so that it answers at once).
func (n *testNS) addAddr(t testing.TB, iface string, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = 0x02 // IFA_F_NODAD
	}
	if err := n.nl.AddrAdd(n.link(t, iface), a); err != nil {
		t.Fatalf("adding %s to %s in %s: %v", p, iface, n.name, err)
	}
}

// addrs returns the netlink view of iface's addresses in n.
func (n *testNS) addrs(t testing.TB, iface string) []netlink.Addr {
	t.Helper()
	as, err := n.nl.AddrList(n.link(t, iface), netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("listing addresses of %s in %s: %v", iface, n.name, err)
	}
	return as
}

func (n *testNS) findAddr(t testing.TB, iface string, p netip.Prefix) (netlink.Addr, bool) {
	t.Helper()
	for _, a := range n.addrs(t, iface) {
		if q, ok := prefixOf(a); ok && q == p {
			return a, true
		}
	}
	return netlink.Addr{}, false
}

// neigh returns n's neighbour entry for ip on iface.
func (n *testNS) neigh(t testing.TB, iface string, ip netip.Addr) (net.HardwareAddr, bool) {
	t.Helper()
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := n.nl.NeighList(n.link(t, iface).Attrs().Index, fam)
	if err != nil {
		t.Fatalf("listing neighbours in %s: %v", n.name, err)
	}
	for _, e := range ns {
		if a, ok := netip.AddrFromSlice(e.IP); ok && a.Unmap() == ip {
			return e.HardwareAddr, true
		}
	}
	return nil, false
}

// bed is the two namespaces, the veth pair and a Linux made in a.
type bed struct {
	a, b *testNS
	l    *Linux // constructed inside a
}

const (
	ifA = "eth1"  // in a
	ifB = "eth1p" // in b
)

func newBed(t testing.TB) *bed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	prefix := fmt.Sprintf("nif-%d-%d", os.Getpid(), bedSeq.Add(1))
	a := newTestNS(t, prefix+"a")
	b := newTestNS(t, prefix+"b")
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifA},
		PeerName:      ifB,
		PeerNamespace: netlink.NsFd(b.ns),
	}
	if err := a.nl.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	if err := a.nl.LinkSetUp(a.link(t, ifA)); err != nil {
		t.Fatal(err)
	}
	if err := b.nl.LinkSetUp(b.link(t, ifB)); err != nil {
		t.Fatal(err)
	}
	var l *Linux
	if err := a.do(func() error {
		var err error
		l, err = New(Config{})
		return err
	}); err != nil {
		t.Fatalf("New in %s: %v", a.name, err)
	}
	t.Cleanup(func() { l.Close() })
	waitFor(t, "carrier on "+ifA, func() bool { up, _ := l.LinkUp(ifA); return up })
	return &bed{a: a, b: b, l: l}
}

// waitFor polls cond every 10 ms for up to 5 s; the limit only keeps a
// broken test from hanging.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
