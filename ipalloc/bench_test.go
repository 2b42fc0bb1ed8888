package ipalloc_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/ctdb-go/ctdb-go/ipalloc"
	"github.com/ctdb-go/ctdb-go/ipalloc/casefile"
)

// benchInput is n healthy nodes and ips addresses counted up from
// 198.18.0.1 (data only), nothing assigned.
func benchInput(alg ipalloc.Algorithm, n, ips int) ipalloc.Input {
	in := ipalloc.Input{Algorithm: alg}
	all := make([]int, n)
	for p := range n {
		all[p] = p
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: p, CanHost: true})
	}
	base := netip.MustParseAddr("198.18.0.0")
	for range ips {
		base = base.Next()
		in.IPs = append(in.IPs, ipalloc.IP{Addr: base, Current: -1, KnownOn: all, AvailableOn: all})
	}
	return in
}

// oneFailed is in balanced (as Allocate leaves it) and then node 0 failed:
// it can no longer host, so its addresses must move.
func oneFailed(in ipalloc.Input) ipalloc.Input {
	out := settled(in)
	out.Nodes = append([]ipalloc.Node(nil), in.Nodes...)
	out.Nodes[0].CanHost = false
	return out
}

// settled is in as Allocate leaves it: a takeover run with nothing to do.
func settled(in ipalloc.Input) ipalloc.Input {
	holder := map[netip.Addr]int{}
	for _, a := range ipalloc.Allocate(in).Assignments {
		holder[a.Addr] = a.PNN
	}
	out := in
	out.IPs = append([]ipalloc.IP(nil), in.IPs...)
	for i := range out.IPs {
		out.IPs[i].Current = holder[out.IPs[i].Addr]
	}
	return out
}

func BenchmarkAllocate(b *testing.B) {
	c, err := casefile.Load("testdata/ctdb/lcp2.030.json")
	if err != nil {
		b.Fatal(err)
	}
	type bench struct {
		name string
		in   ipalloc.Input
	}
	benches := []bench{{"lcp2.030-5x900-unassigned", c.Steps[0].Input}}
	for _, n := range []int{64, 256} {
		in := benchInput(ipalloc.LCP2, n, 4096)
		prefix := "lcp2-" + strconv.Itoa(n) + "x4096-"
		benches = append(benches, bench{prefix + "unassigned", in}, bench{prefix + "onefailed", oneFailed(in)})
		if n == 256 {
			benches = append(benches, bench{prefix + "settled", settled(in)})
		}
	}
	in := benchInput(ipalloc.LCP2Rebalance, 256, 4096)
	benches = append(benches, bench{"lcp2rebalance-256x4096-onefailed", oneFailed(in)})
	for _, alg := range []ipalloc.Algorithm{ipalloc.Deterministic, ipalloc.NonDeterministic} {
		in := benchInput(alg, 256, 4096)
		benches = append(benches, bench{alg.String() + "-256x4096-onefailed", oneFailed(in)})
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ipalloc.Allocate(bb.in)
			}
		})
	}
}
