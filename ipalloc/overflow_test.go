package ipalloc_test

import (
	"math/bits"
	"net/netip"
	"testing"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// TestLCP2NoOverflow is the case CTDB gets wrong (measured: it stays at
// 784/58/58): node 0 holds 900 addresses from four /24s, nodes 1 and 2
// come back empty. Node 0's imbalance, over 2³², wraps in CTDB's 32-bit
// arithmetic and failback stops early; here it must end at 300 each.
func TestLCP2NoOverflow(t *testing.T) {
	var in ipalloc.Input
	in.Algorithm = ipalloc.LCP2
	for p := range 3 {
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: p, CanHost: true})
	}
	for net := 1; net <= 4; net++ {
		for host := 1; host <= 225; host++ {
			a := netip.AddrFrom4([4]byte{198, 18, byte(net), byte(host)})
			in.IPs = append(in.IPs, ipalloc.IP{Addr: a, Current: 0, AvailableOn: []int{0, 1, 2}})
		}
	}

	// The case must exercise the overflow: the sum of distance² over the
	// pairs on node 0 does not fit in 32 bits.
	var imb, carry uint64
	for i, x := range in.IPs {
		for _, y := range in.IPs[i+1:] {
			d := refDistance(x.Addr, y.Addr)
			imb, carry = bits.Add64(imb, d*d, carry)
		}
	}
	if carry != 0 || imb < 1<<32 {
		t.Fatalf("node 0's imbalance is %d, want one that overflows 32 bits", imb)
	}

	if err := ipalloc.Check(in); err != nil {
		t.Fatal(err)
	}
	res := ipalloc.Allocate(in)
	count := make([]int, 3)
	for _, a := range res.Assignments {
		count[a.PNN]++
	}
	if count[0] != 300 || count[1] != 300 || count[2] != 300 {
		t.Errorf("Allocate(900 addresses on node 0, nodes 1 and 2 empty) spread %v, want [300 300 300]", count)
	}
	if len(res.Moves) != 600 {
		t.Errorf("Allocate() moved %d addresses, want 600", len(res.Moves))
	}
}
