//go:build integration

package netif

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestAddAddrLifetime(t *testing.T) {
	tests := []struct {
		p         netip.Prefix
		broadcast string // IPv4: brd +
	}{
		{pfx("198.18.0.1/24"), "198.18.0.255"},
		{pfx("198.18.0.1/32"), "<nil>"},
		{pfx("2001:2::1/64"), "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			t.Parallel()
			bd := newBed(t)
			p := tt.p
			if err := bd.l.AddAddr(ifA, p, 2*time.Second); err != nil {
				t.Fatalf("AddAddr: %v", err)
			}
			a, ok := bd.a.findAddr(t, ifA, p)
			if !ok {
				t.Fatalf("%s not on %s after AddAddr", p, ifA)
			}
			if a.ValidLft != 2 || a.PreferedLft != 2 {
				t.Errorf("valid_lft %d preferred_lft %d, want 2 and 2", a.ValidLft, a.PreferedLft)
			}
			if got := a.Broadcast.String(); got != tt.broadcast {
				t.Errorf("broadcast %s, want %s", got, tt.broadcast)
			}
			if p.Addr().Is6() && (a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0) {
				t.Errorf("flags %#x, want nodad and not tentative", a.Flags)
			}
			infos, err := bd.l.AddrDetails(ifA)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, i := range infos {
				if i.Prefix == p {
					found = true
					if i.Permanent || i.ValidLft != 2*time.Second {
						t.Errorf("AddrDetails: %+v, want ValidLft 2s", i)
					}
				}
			}
			if !found {
				t.Errorf("AddrDetails(%s) = %v, want %s", ifA, infos, p)
			}
			// The kernel removes it by itself when the lifetime runs out.
			waitFor(t, p.String()+" to expire", func() bool { _, ok := bd.a.findAddr(t, ifA, p); return !ok })
		})
	}
}

func TestAddAddrRefreshExtends(t *testing.T) {
	bd := newBed(t)
	p := pfx("198.18.0.1/24")
	if err := bd.l.AddAddr(ifA, p, time.Second); err != nil {
		t.Fatalf("AddAddr: %v", err)
	}
	if err := bd.l.AddAddr(ifA, p, 4*time.Second); err != nil {
		t.Fatalf("refreshing: %v", err)
	}
	a, ok := bd.a.findAddr(t, ifA, p)
	if !ok || a.ValidLft != 4 {
		t.Fatalf("after refresh: %+v (present %v), want valid_lft 4", a, ok)
	}
	// Long past the first lifetime (1 s, removed up to ~0.3 s late) and
	// well before the second (4 s).
	time.Sleep(2 * time.Second)
	if _, ok := bd.a.findAddr(t, ifA, p); !ok {
		t.Fatalf("%s gone 2 s after a refresh to 4 s", p)
	}
	// A shorter lifetime is taken too: the lease is what counts.
	if err := bd.l.AddAddr(ifA, p, time.Second); err != nil {
		t.Fatal(err)
	}
	if a, _ := bd.a.findAddr(t, ifA, p); a.ValidLft != 1 {
		t.Errorf("after refreshing to 1 s: valid_lft %d, want 1", a.ValidLft)
	}
}

func TestDelAddr(t *testing.T) {
	bd := newBed(t)
	for _, p := range []netip.Prefix{pfx("198.18.0.1/24"), pfx("2001:2::1/64")} {
		if err := bd.l.AddAddr(ifA, p, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if got, err := bd.l.Addrs(ifA); err != nil || !containsPrefix(got, p) {
			t.Fatalf("Addrs(%s) = %v, %v; want %s among them", ifA, got, err, p)
		}
		for i := range 2 {
			if err := bd.l.DelAddr(ifA, p); err != nil {
				t.Fatalf("DelAddr(%s) #%d: %v", p, i+1, err)
			}
		}
		if _, ok := bd.a.findAddr(t, ifA, p); ok {
			t.Errorf("%s still there after DelAddr", p)
		}
	}
	// The prefix length is part of the address: /32 is not /24.
	if err := bd.l.AddAddr(ifA, pfx("198.18.0.1/24"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bd.l.DelAddr(ifA, pfx("198.18.0.1/32")); err != nil {
		t.Errorf("DelAddr of another prefix length: %v", err)
	}
	if _, ok := bd.a.findAddr(t, ifA, pfx("198.18.0.1/24")); !ok {
		t.Errorf("DelAddr(198.18.0.1/32) removed 198.18.0.1/24")
	}
	if err := bd.l.DelAddr("nif-none", pfx("198.18.0.1/24")); !errors.Is(err, ErrNoLink) {
		t.Errorf("DelAddr on a missing link = %v, want ErrNoLink", err)
	}
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestPromoteSecondaries(t *testing.T) {
	bd := newBed(t)
	sysctl := func() string {
		var b []byte
		if err := bd.a.do(func() error {
			var err error
			b, err = os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", ifA, "promote_secondaries"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	first, second := pfx("198.18.0.10/24"), pfx("198.18.0.11/24")
	deleteFirst := func() bool {
		t.Helper()
		for _, p := range []netip.Prefix{first, second} {
			if err := bd.l.AddAddr(ifA, p, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if err := bd.l.DelAddr(ifA, first); err != nil {
			t.Fatal(err)
		}
		_, kept := bd.a.findAddr(t, ifA, second)
		if err := bd.l.DelAddr(ifA, second); err != nil {
			t.Fatal(err)
		}
		return kept
	}

	// The trap, with the kernel's default: the secondary goes too.
	if got := sysctl(); got != "0" {
		t.Fatalf("promote_secondaries starts at %s, want the default 0", got)
	}
	if deleteFirst() {
		t.Fatalf("without promote_secondaries, %s survived deleting %s: the test shows nothing", second, first)
	}

	if err := bd.l.PromoteSecondaries(ifA); err != nil {
		t.Fatalf("PromoteSecondaries: %v", err)
	}
	if got := sysctl(); got != "1" {
		t.Errorf("promote_secondaries = %s, want 1", got)
	}
	if !deleteFirst() {
		t.Errorf("with promote_secondaries, %s went with %s", second, first)
	}
}

// nextEvent returns the next event for iface, skipping others.
func nextEvent(t *testing.T, ch <-chan LinkEvent, iface string) LinkEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if ev.Iface == iface {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s within 5 s", iface)
		}
	}
}

func TestWatchLinksAndLinkUp(t *testing.T) {
	bd := newBed(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := bd.l.WatchLinks(ctx)
	if err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	peer := bd.b.link(t, ifB)

	if err := bd.b.nl.LinkSetDown(peer); err != nil {
		t.Fatal(err)
	}
	if ev, want := nextEvent(t, ch, ifA), (LinkEvent{Iface: ifA, Exists: true}); ev != want {
		t.Errorf("after peer down: %+v, want %+v", ev, want)
	}
	if up, err := bd.l.LinkUp(ifA); up || err != nil {
		t.Errorf("LinkUp(%s) with the peer down = %v, %v; want false", ifA, up, err)
	}

	if err := bd.b.nl.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	if ev, want := nextEvent(t, ch, ifA), (LinkEvent{Iface: ifA, Up: true, Exists: true}); ev != want {
		t.Errorf("after peer up: %+v, want %+v", ev, want)
	}
	if up, err := bd.l.LinkUp(ifA); !up || err != nil {
		t.Errorf("LinkUp(%s) with the peer up = %v, %v; want true", ifA, up, err)
	}

	// An ifb device: appears, has no ethtool link state (so LinkUp falls
	// back to netlink), disappears. (This kernel has no dummy driver.)
	if err := bd.a.nl.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "ifb9"}}); err != nil {
		t.Fatal(err)
	}
	if ev, want := nextEvent(t, ch, "ifb9"), (LinkEvent{Iface: "ifb9", Exists: true}); ev != want {
		t.Errorf("after adding ifb9: %+v, want %+v", ev, want)
	}
	if err := bd.a.nl.LinkSetUp(bd.a.link(t, "ifb9")); err != nil {
		t.Fatal(err)
	}
	if ev, want := nextEvent(t, ch, "ifb9"), (LinkEvent{Iface: "ifb9", Up: true, Exists: true}); ev != want {
		t.Errorf("after ifb9 up: %+v, want %+v", ev, want)
	}
	if _, err := bd.l.eth.LinkState("ifb9"); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("ethtool GLINK on ifb9: %v, want EOPNOTSUPP (else LinkUp's fallback goes untested)", err)
	}
	if up, err := bd.l.LinkUp("ifb9"); !up || err != nil {
		t.Errorf("LinkUp(ifb9) = %v, %v; want true", up, err)
	}
	if !bd.l.LinkExists("ifb9") {
		t.Errorf("LinkExists(ifb9) = false")
	}
	if err := bd.a.nl.LinkDel(bd.a.link(t, "ifb9")); err != nil {
		t.Fatal(err)
	}
	// Deleting an up link closes it first: the kernel reports it down,
	// then gone.
	ev := nextEvent(t, ch, "ifb9")
	if ev == (LinkEvent{Iface: "ifb9", Exists: true}) {
		ev = nextEvent(t, ch, "ifb9")
	}
	if want := (LinkEvent{Iface: "ifb9"}); ev != want {
		t.Errorf("after deleting ifb9: %+v, want %+v", ev, want)
	}
	if bd.l.LinkExists("ifb9") {
		t.Errorf("LinkExists(ifb9) after deletion")
	}

	cancel()
	for range ch {
	}
}

func TestProbe(t *testing.T) {
	bd := newBed(t)
	peerMAC := bd.b.link(t, ifB).Attrs().HardwareAddr
	// a has no IPv4 address at all: the probe must not need one.
	for _, a := range bd.a.addrs(t, ifA) {
		if a.IP.To4() != nil {
			t.Fatalf("%s has IPv4 address %s; the test wants none", ifA, a.IPNet)
		}
	}
	bd.b.addAddr(t, ifB, pfx("198.18.0.2/24"))
	bd.b.addAddr(t, ifB, pfx("2001:2::2/64"))
	ctx := context.Background()

	tests := []struct {
		ip   string
		want net.HardwareAddr
	}{
		{"198.18.0.2", peerMAC},
		{"198.18.0.99", nil},
		{"2001:2::2", peerMAC},
		{"2001:2::99", nil},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			got, err := bd.l.Probe(ctx, ifA, netip.MustParseAddr(tt.ip), 300*time.Millisecond)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got.String() != tt.want.String() {
				t.Errorf("Probe(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}

	t.Run("context ends first", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		got, err := bd.l.Probe(ctx, ifA, netip.MustParseAddr("198.18.0.99"), time.Hour)
		if got != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Probe = %v, %v; want nil, context.Canceled", got, err)
		}
	})
}

func TestAnnounce(t *testing.T) {
	ownMAC := func(bd *bed) net.HardwareAddr { return bd.a.link(t, ifA).Attrs().HardwareAddr }
	stale := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	tests := []struct {
		name      string
		peer, vip netip.Prefix
	}{
		{"IPv4 gratuitous ARP", pfx("198.18.0.2/24"), pfx("198.18.0.10/24")},
		{"IPv6 unsolicited NA", pfx("2001:2::2/64"), pfx("2001:2::10/64")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bd := newBed(t)
			bd.b.addAddr(t, ifB, tt.peer)
			// The peer still thinks the address is at the old holder.
			err := bd.b.nl.NeighAdd(&netlink.Neigh{
				LinkIndex: bd.b.link(t, ifB).Attrs().Index, State: netlink.NUD_STALE,
				IP: net.IP(tt.vip.Addr().AsSlice()), HardwareAddr: stale,
			})
			if err != nil {
				t.Fatalf("adding the stale neighbour entry: %v", err)
			}
			if err := bd.l.AddAddr(ifA, tt.vip, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			// Adding the address announces nothing by itself.
			if mac, _ := bd.b.neigh(t, ifB, tt.vip.Addr()); mac.String() != stale.String() {
				t.Fatalf("peer entry is %v before Announce, want still %v", mac, stale)
			}
			if err := bd.l.Announce(ifA, tt.vip.Addr()); err != nil {
				t.Fatalf("Announce: %v", err)
			}
			want := ownMAC(bd).String()
			var got net.HardwareAddr
			waitFor(t, "the peer's entry to move to "+want, func() bool {
				got, _ = bd.b.neigh(t, ifB, tt.vip.Addr())
				return got.String() == want
			})
		})
	}
}

func TestNamespacePinning(t *testing.T) {
	// l was made in a: from this goroutine (root namespace) it must still
	// see a's interfaces, and the root namespace must not see them.
	bd := newBed(t)
	if !bd.l.LinkExists(ifA) {
		t.Errorf("LinkExists(%s) from another thread = false", ifA)
	}
	root, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if root.LinkExists(ifB) {
		t.Errorf("the root namespace has the peer %s", ifB)
	}
	if !bd.l.LinkExists(ifA) || bd.l.LinkExists(ifB) {
		t.Errorf("the Linux made in %s does not see %s (only)", bd.a.name, ifA)
	}
}

func TestProbeConcurrent(t *testing.T) {
	bd := newBed(t)
	peerMAC := bd.b.link(t, ifB).Attrs().HardwareAddr.String()
	bd.b.addAddr(t, ifB, pfx("198.18.0.2/24"))
	bd.b.addAddr(t, ifB, pfx("198.18.0.3/24"))
	bd.b.addAddr(t, ifB, pfx("2001:2::2/64"))
	want := map[string]string{
		"198.18.0.2": peerMAC, "198.18.0.3": peerMAC, "2001:2::2": peerMAC,
		"198.18.0.98": "", "198.18.0.99": "", "2001:2::99": "",
	}
	type result struct {
		ip, mac string
		err     error
	}
	results := make(chan result, 2*len(want))
	for range 2 {
		for ip := range want {
			go func() {
				mac, err := bd.l.Probe(context.Background(), ifA, netip.MustParseAddr(ip), 300*time.Millisecond)
				s := ""
				if mac != nil {
					s = mac.String()
				}
				results <- result{ip, s, err}
			}()
		}
	}
	for range 2 * len(want) {
		r := <-results
		if r.err != nil || r.mac != want[r.ip] {
			t.Errorf("Probe(%s) = %q, %v; want %q", r.ip, r.mac, r.err, want[r.ip])
		}
	}
}

func TestProbeAfterLinkRecreated(t *testing.T) {
	// The packet sockets outlive links: a link deleted and made again (a
	// new index) works at once.
	bd := newBed(t)
	ctx := context.Background()
	if _, err := bd.l.Probe(ctx, ifA, netip.MustParseAddr("198.18.0.2"), 10*time.Millisecond); err != nil {
		t.Fatalf("first Probe: %v", err)
	}
	old := bd.a.link(t, ifA).Attrs().Index
	if err := bd.a.nl.LinkDel(bd.a.link(t, ifA)); err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifA}, PeerName: ifB, PeerNamespace: netlink.NsFd(bd.b.ns)}
	if err := bd.a.nl.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if idx := bd.a.link(t, ifA).Attrs().Index; idx == old {
		t.Fatalf("re-created %s has the old index %d", ifA, idx)
	}
	for _, n := range []*testNS{bd.a, bd.b} {
		name := ifA
		if n == bd.b {
			name = ifB
		}
		if err := n.nl.LinkSetUp(n.link(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	bd.b.addAddr(t, ifB, pfx("198.18.0.2/24"))
	waitFor(t, "carrier on the new "+ifA, func() bool { up, _ := bd.l.LinkUp(ifA); return up })
	peerMAC := bd.b.link(t, ifB).Attrs().HardwareAddr.String()
	mac, err := bd.l.Probe(ctx, ifA, netip.MustParseAddr("198.18.0.2"), 300*time.Millisecond)
	if err != nil || mac.String() != peerMAC {
		t.Errorf("Probe on the new link = %v, %v; want %s", mac, err, peerMAC)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestWatchLinksResyncsAfterOverflow(t *testing.T) {
	bd := newBed(t)
	var logs syncBuffer
	bd.l.log = slog.New(slog.NewTextHandler(&logs, nil))
	bd.l.subRcvBuf = 4096 // a few messages: easy to overflow
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := bd.l.WatchLinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads: the watch's channel fills (new links), then its queue
	// and the socket (MTU changes, which it does not report), the kernel
	// drops messages and says so (ENOBUFS), and the watch must subscribe
	// again and report the state it finds: the peer's last change, down.
	for i := range 20 {
		if err := bd.a.nl.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("ifb%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	own := bd.a.link(t, ifA)
	for i := range 300 {
		if err := bd.a.nl.LinkSetMTU(own, 1400+i%2); err != nil {
			t.Fatal(err)
		}
	}
	peer := bd.b.link(t, ifB)
	if err := bd.b.nl.LinkSetDown(peer); err != nil {
		t.Fatal(err)
	}
	// Read until the watch falls quiet (1 s without an event).
	var last LinkEvent
	for quiet := false; !quiet; {
		select {
		case ev := <-ch:
			if ev.Iface == ifA {
				last = ev
			}
		case <-time.After(time.Second):
			quiet = true
		}
	}
	if !strings.Contains(logs.String(), "subscribing again") {
		t.Fatalf("the subscription never overflowed, so the resync went untested; log:\n%s", logs.String())
	}
	if want := (LinkEvent{Iface: ifA, Exists: true}); last != want {
		t.Errorf("last event for %s = %+v, want the final state %+v", ifA, last, want)
	}
	// The new subscription delivers.
	if err := bd.b.nl.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	if ev, want := nextEvent(t, ch, ifA), (LinkEvent{Iface: ifA, Up: true, Exists: true}); ev != want {
		t.Errorf("after the resync, peer up: %+v, want %+v", ev, want)
	}
}

// TestArpLinkLookups: the ioctl lookups behind Probe and Announce see the
// namespace of New (not the caller's) and agree with netlink.
func TestArpLinkLookups(t *testing.T) {
	bd := newBed(t)
	want := bd.a.link(t, ifA).Attrs()
	got, err := bd.l.arpLink(ifA)
	if err != nil {
		t.Fatalf("arpLink(%s): %v", ifA, err)
	}
	if got.index != want.Index || !bytes.Equal(got.mac, want.HardwareAddr) || got.noARP {
		t.Errorf("arpLink(%s) = %+v, want index %d mac %s, ARP on", ifA, got, want.Index, want.HardwareAddr)
	}
	lo, err := bd.l.arpLink("lo")
	if err != nil || !lo.noARP || lo.index != bd.a.link(t, "lo").Attrs().Index {
		t.Errorf("arpLink(lo) = %+v, %v; want lo's index, no ARP", lo, err)
	}
	if _, err := bd.l.arpLink("nif-none"); !errors.Is(err, ErrNoLink) {
		t.Errorf("arpLink(nif-none) = %v, want ErrNoLink", err)
	}
	// A NOARP Ethernet link needs no ARP either.
	if err := bd.a.nl.LinkSetARPOff(bd.a.link(t, ifA)); err != nil {
		t.Fatal(err)
	}
	if got, err := bd.l.arpLink(ifA); err != nil || !got.noARP {
		t.Errorf("arpLink(%s) with NOARP = %+v, %v; want no ARP", ifA, got, err)
	}
}

// TestEstablishedTCP counts established connections by local address, as
// ss does, IPv4 ones on dual-stack sockets included.
func TestEstablishedTCP(t *testing.T) {
	bd := newBed(t)
	ip := pfx("198.18.0.1/24")
	if err := bd.l.AddAddr(ifA, ip, time.Hour); err != nil {
		t.Fatal(err)
	}
	count := func(a string) int {
		t.Helper()
		m, err := bd.l.EstablishedTCP()
		if err != nil {
			t.Fatalf("EstablishedTCP: %v", err)
		}
		return m[netip.MustParseAddr(a)]
	}
	if n := count("198.18.0.1"); n != 0 {
		t.Fatalf("before any connection: %d, want 0", n)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Inside the namespace: a listener on IPv4 and one on [::] (which
	// takes IPv4 clients on an AF_INET6 socket), a client to each. Both
	// ends of each connection have 198.18.0.1 as their local address.
	for _, network := range []string{"tcp4", "tcp"} {
		if err := bd.a.do(func() error {
			addr := "198.18.0.1:0"
			if network == "tcp" {
				addr = ":0" // dual-stack: AF_INET6, IPV6_V6ONLY off
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				return err
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			c, err := net.Dial("tcp4", fmt.Sprintf("198.18.0.1:%d", port))
			if err != nil {
				return err
			}
			conns = append(conns, c)
			s, err := ln.Accept()
			if err != nil {
				return err
			}
			conns = append(conns, s)
			return nil
		}); err != nil {
			t.Fatalf("%s connection: %v", network, err)
		}
	}
	if n := count("198.18.0.1"); n != 4 {
		t.Errorf("198.18.0.1: %d, want 4 (two connections, both ends local)", n)
	}
	if n := count("198.18.0.2"); n != 0 {
		t.Errorf("198.18.0.2: %d, want 0", n)
	}
	if n := count("2001:2::1"); n != 0 {
		t.Errorf("2001:2::1: %d, want 0", n)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitFor(t, "the connections to close", func() bool { return count("198.18.0.1") == 0 })
}
