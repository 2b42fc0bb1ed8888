//go:build integration

package netif

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The benchmarks run their loop on a thread inside the bed's namespace a,
// as ctdbd runs inside its own: the cost measured is the daemon's, without
// the namespace switch a caller from another namespace pays (see
// BenchmarkAnnounceFromOtherNamespace).

func inA(b *testing.B, bd *bed, fn func()) {
	b.Helper()
	if err := bd.a.do(func() error { fn(); return nil }); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkAddAddrNew(b *testing.B) {
	bd := newBed(b)
	p := pfx("198.18.0.10/24")
	inA(b, bd, func() {
		for b.Loop() {
			if err := bd.l.AddAddr(ifA, p, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := bd.l.DelAddr(ifA, p); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func BenchmarkAddAddrRefresh(b *testing.B) {
	bd := newBed(b)
	p := pfx("198.18.0.10/24")
	inA(b, bd, func() {
		for b.Loop() {
			if err := bd.l.AddAddr(ifA, p, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDelAddr(b *testing.B) {
	bd := newBed(b)
	p := pfx("198.18.0.10/24")
	inA(b, bd, func() {
		for b.Loop() {
			b.StopTimer()
			if err := bd.l.AddAddr(ifA, p, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := bd.l.DelAddr(ifA, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchAnnounce(b *testing.B, ip string) {
	bd := newBed(b)
	vip := netip.MustParseAddr(ip)
	inA(b, bd, func() {
		for b.Loop() {
			if err := bd.l.Announce(ifA, vip); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAnnounceIPv4(b *testing.B) { benchAnnounce(b, "198.18.0.10") }
func BenchmarkAnnounceIPv6(b *testing.B) { benchAnnounce(b, "2001:2::10") }

func BenchmarkAnnounceFromOtherNamespace(b *testing.B) {
	bd := newBed(b)
	vip := netip.MustParseAddr("198.18.0.10")
	for b.Loop() {
		if err := bd.l.Announce(ifA, vip); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPacketSocketOpenClose is what a socket per Probe or Announce
// would cost; the close waits for an RCU grace period.
func BenchmarkPacketSocketOpenClose(b *testing.B) {
	bd := newBed(b)
	index := bd.a.link(b, ifA).Attrs().Index
	inA(b, bd, func() {
		for b.Loop() {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: index}); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
}

func benchProbe(b *testing.B, ip string, answered bool, wait time.Duration) {
	bd := newBed(b)
	bd.b.addAddr(b, ifB, pfx("198.18.0.2/24"))
	bd.b.addAddr(b, ifB, pfx("2001:2::2/64"))
	target := netip.MustParseAddr(ip)
	ctx := context.Background()
	inA(b, bd, func() {
		for b.Loop() {
			mac, err := bd.l.Probe(ctx, ifA, target, wait)
			if err != nil {
				b.Fatal(err)
			}
			if (mac != nil) != answered {
				b.Fatalf("Probe(%s) = %v, want answered %v", ip, mac, answered)
			}
		}
	})
}

func BenchmarkProbeAnsweredIPv4(b *testing.B) { benchProbe(b, "198.18.0.2", true, time.Second) }
func BenchmarkProbeAnsweredIPv6(b *testing.B) { benchProbe(b, "2001:2::2", true, time.Second) }
func BenchmarkProbeNobody10ms(b *testing.B)   { benchProbe(b, "198.18.0.99", false, 10*time.Millisecond) }
func BenchmarkProbeNobodyIPv6_10ms(b *testing.B) {
	benchProbe(b, "2001:2::99", false, 10*time.Millisecond)
}
