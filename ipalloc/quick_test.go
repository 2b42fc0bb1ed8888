package ipalloc_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// randomInput makes a valid input: up to maxNodes nodes, some unable to
// host; up to maxIPs addresses from a few IPv4 /24s and IPv6 /64s, each
// known on a subset of the nodes and available on part of that, held by
// anyone or nobody; any algorithm (also an unknown value) and tunables.
func randomInput(r *rand.Rand, maxNodes, maxIPs int) ipalloc.Input {
	var in ipalloc.Input
	in.Algorithm = []ipalloc.Algorithm{0, 1, 2, 2, 3, 7}[r.IntN(6)]
	in.NoIPTakeover = r.IntN(10) == 0
	in.NoIPFailback = r.IntN(5) == 0
	n := 1 + r.IntN(maxNodes)
	for p := range n {
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: p, CanHost: r.IntN(5) != 0})
	}
	if r.IntN(4) == 0 {
		in.ForceRebalance = []int{r.IntN(n + 1)} // sometimes no such node
	}
	prefixes := []string{"198.18.1.", "198.18.2.", "198.19.200.", "10.0.0."}
	v6 := r.IntN(3) == 0
	seen := map[netip.Addr]bool{}
	for range r.IntN(maxIPs + 1) {
		var a netip.Addr
		if v6 && r.IntN(2) == 0 {
			a = netip.MustParseAddr("2001:db8:" + strconv.Itoa(r.IntN(3)) + "::" + strconv.FormatInt(int64(r.IntN(1<<16)), 16))
		} else {
			a = netip.MustParseAddr(prefixes[r.IntN(len(prefixes))] + strconv.Itoa(r.IntN(256)))
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		ip := ipalloc.IP{Addr: a, Current: r.IntN(n+1) - 1}
		everywhere := r.IntN(2) == 0
		for p := range n {
			if everywhere || r.IntN(3) != 0 {
				ip.KnownOn = append(ip.KnownOn, p)
				if r.IntN(8) != 0 {
					ip.AvailableOn = append(ip.AvailableOn, p)
				}
			}
		}
		in.IPs = append(in.IPs, ip)
	}
	if in.Algorithm == ipalloc.Deterministic && len(in.IPs) > 0 && r.IntN(2) == 0 {
		in.HomeNodes = map[netip.Addr]int{}
		for range 3 {
			in.HomeNodes[in.IPs[r.IntN(len(in.IPs))].Addr] = r.IntN(n + 2)
		}
	}
	return in
}

// shuffled returns in with its nodes, addresses and node lists in another
// order.
func shuffled(r *rand.Rand, in ipalloc.Input) ipalloc.Input {
	out := in
	out.Nodes = slices.Clone(in.Nodes)
	r.Shuffle(len(out.Nodes), func(i, j int) { out.Nodes[i], out.Nodes[j] = out.Nodes[j], out.Nodes[i] })
	out.IPs = slices.Clone(in.IPs)
	for i := range out.IPs {
		a := slices.Clone(out.IPs[i].AvailableOn)
		r.Shuffle(len(a), func(x, y int) { a[x], a[y] = a[y], a[x] })
		out.IPs[i].AvailableOn = a
	}
	r.Shuffle(len(out.IPs), func(i, j int) { out.IPs[i], out.IPs[j] = out.IPs[j], out.IPs[i] })
	return out
}

// TestAgainstReference compares the fast implementation with the naive
// transcription of CTDB's code on random inputs.
func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		in := randomInput(r, 8, 40)
		switch {
		case i%100 == 0:
			in = randomInput(r, 150, 50) // node bitsets of several words
		case i%10 == 0:
			in = randomInput(r, 20, 120)
		}
		if err := ipalloc.Check(in); err != nil {
			t.Fatalf("case %d: Check: %v", i, err)
		}
		got := ipalloc.Allocate(in)
		want := referenceAllocate(in)
		if diff := cmp.Diff(lines(want), lines(got.Assignments)); diff != "" {
			t.Fatalf("case %d (%v, %d nodes): Allocate() differs from the reference (-want +got):\n%s",
				i, in.Algorithm, len(in.Nodes), diff)
		}
	}
}

// TestInvariants checks, on random inputs, what must hold whatever the
// algorithm.
func TestInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		in := randomInput(r, 10, 60)
		if err := ipalloc.Check(in); err != nil {
			t.Fatalf("case %d: Check: %v", i, err)
		}
		res := ipalloc.Allocate(in)
		canHost := map[int]bool{}
		for _, nd := range in.Nodes {
			canHost[nd.PNN] = nd.CanHost
		}
		byAddr := map[netip.Addr]ipalloc.IP{}
		for _, ip := range in.IPs {
			byAddr[ip.Addr] = ip
		}
		if len(res.Assignments) != len(in.IPs) {
			t.Fatalf("case %d: %d assignments for %d addresses", i, len(res.Assignments), len(in.IPs))
		}
		var moves []ipalloc.Move
		for j, a := range res.Assignments {
			ip, ok := byAddr[a.Addr]
			if !ok {
				t.Fatalf("case %d: assignment for unknown address %s", i, a.Addr)
			}
			delete(byAddr, a.Addr) // each address once
			if j > 0 && ipalloc.Compare(res.Assignments[j-1].Addr, a.Addr) >= 0 {
				t.Errorf("case %d: %s listed after %s", i, a.Addr, res.Assignments[j-1].Addr)
			}
			hostable := false
			for _, p := range ip.AvailableOn {
				hostable = hostable || canHost[p]
			}
			switch {
			case a.PNN != -1 && (!canHost[a.PNN] || !slices.Contains(ip.AvailableOn, a.PNN)):
				t.Errorf("case %d: %s on node %d, which cannot host it", i, a.Addr, a.PNN)
			case in.NoIPTakeover && a.PNN != -1 && a.PNN != ip.Current:
				t.Errorf("case %d: NoIPTakeover but %s moved from %d to %d", i, a.Addr, ip.Current, a.PNN)
			case !in.NoIPTakeover && a.PNN == -1 && hostable:
				t.Errorf("case %d: %s unplaced although a node can host it", i, a.Addr)
			}
			if a.PNN != ip.Current {
				moves = append(moves, ipalloc.Move{Addr: a.Addr, From: ip.Current, To: a.PNN})
			}
		}
		if diff := cmp.Diff(moves, res.Moves, cmpAddr); diff != "" {
			t.Errorf("case %d: Moves mismatch (-want +got):\n%s", i, diff)
		}
	}
}

// TestDeterministicOutput: the same input gives the same result, however
// its nodes, addresses and node lists are ordered.
func TestDeterministicOutput(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 1000 {
		in := randomInput(r, 10, 60)
		if err := ipalloc.Check(in); err != nil {
			t.Fatalf("case %d: Check: %v", i, err)
		}
		want := ipalloc.Allocate(in)
		for range 3 {
			got := ipalloc.Allocate(shuffled(r, in))
			if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
				t.Fatalf("case %d: Allocate(shuffled input) differs (-first +shuffled):\n%s", i, diff)
			}
		}
	}
}

// TestLCP2SpreadWithinOne: with every node able to host every address and
// nothing assigned, LCP2 gives every node the same number of addresses, to
// within one.
func TestLCP2SpreadWithinOne(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 1000 {
		in := randomInput(r, 12, 100)
		in.Algorithm = []ipalloc.Algorithm{ipalloc.LCP2, ipalloc.LCP2Rebalance}[i%2]
		in.NoIPTakeover, in.NoIPFailback, in.ForceRebalance = false, false, nil
		for p := range in.Nodes {
			in.Nodes[p].CanHost = true
		}
		for j := range in.IPs {
			in.IPs[j].Current = -1
			in.IPs[j].AvailableOn = nil
			for p := range in.Nodes {
				in.IPs[j].AvailableOn = append(in.IPs[j].AvailableOn, p)
			}
		}
		if err := ipalloc.Check(in); err != nil {
			t.Fatalf("case %d: Check: %v", i, err)
		}
		res := ipalloc.Allocate(in)
		count := make([]int, len(in.Nodes))
		for _, a := range res.Assignments {
			count[a.PNN]++
		}
		if slices.Max(count)-slices.Min(count) > 1 {
			t.Errorf("case %d: %d addresses on %d nodes spread as %v, want within one",
				i, len(in.IPs), len(in.Nodes), count)
		}
	}
}

// TestStable: running again on the plan, with the same nodes, moves
// nothing, so a leader's repeated takeover runs cause no churn (LCP2 and
// deterministic; the non-deterministic algorithm may resume a rebalance it
// stopped after len(IPs)+5 moves).
func TestStable(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 1000 {
		in := randomInput(r, 10, 60)
		if in.Algorithm == ipalloc.NonDeterministic {
			continue
		}
		first := ipalloc.Allocate(in)
		again := in
		again.IPs = slices.Clone(in.IPs)
		for j := range again.IPs {
			for _, a := range first.Assignments {
				if a.Addr == again.IPs[j].Addr {
					again.IPs[j].Current = a.PNN
				}
			}
		}
		if second := ipalloc.Allocate(again); len(second.Moves) != 0 {
			t.Errorf("case %d (%v): second run moved %v", i, in.Algorithm, second.Moves)
		}
	}
}
