package ipalloc_test

import (
	"bytes"
	"math/bits"
	"net/netip"
	"slices"
	"sort"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// referenceAllocate is a straightforward transcription of CTDB's
// allocation code (ipalloc_common.c, ipalloc_lcp2.c,
// ipalloc_deterministic.c, ipalloc_nondeterministic.c): every sum is
// recomputed from the address list when needed, as CTDB does. It differs
// from CTDB only where ipalloc documents a fix: 64-bit sums, IPv6 before
// IPv4 with cross-family distance 96, NoIPTakeover honoured by the
// deterministic algorithm, and LCP2Rebalance. It is slow and exists to
// check the fast implementation. Input must be valid.
func referenceAllocate(in ipalloc.Input) []ipalloc.Assignment {
	type rip struct {
		addr  netip.Addr
		pnn   int
		avail map[int]bool
	}
	num := len(in.Nodes)
	canHostNode := map[int]bool{}
	for _, nd := range in.Nodes {
		canHostNode[nd.PNN] = nd.CanHost
	}
	var all []*rip
	for _, ip := range in.IPs {
		r := &rip{addr: ip.Addr, pnn: ip.Current, avail: map[int]bool{}}
		for _, p := range ip.AvailableOn {
			r.avail[p] = true
		}
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return refBefore(all[i].addr, all[j].addr) })

	canHost := func(p int, t *rip) bool { return canHostNode[p] && t.avail[p] }
	canTakeover := func(p int, t *rip) bool { return !in.NoIPTakeover && canHost(p, t) }
	coverage := func(p int) int {
		c := 0
		for _, t := range all {
			if t.pnn == p {
				c++
			}
		}
		return c
	}
	findTakeoverNode := func(t *rip) {
		pnn, minNum := -1, 0
		for i := range num {
			if !canTakeover(i, t) {
				continue
			}
			if c := coverage(i); pnn == -1 || c < minNum {
				pnn, minNum = i, c
			}
		}
		if pnn != -1 {
			t.pnn = pnn
		}
	}
	basicAllocateUnassigned := func() {
		for _, t := range all {
			if t.pnn == -1 {
				findTakeoverNode(t)
			}
		}
	}
	unassignUnsuitable := func() {
		for _, t := range all {
			if t.pnn != -1 && !canHost(t.pnn, t) {
				t.pnn = -1
			}
		}
	}
	// dsum is CTDB's ip_distance_2_sum over the list from t onwards.
	dsum := func(ip *rip, from []*rip, pnn int) uint64 {
		var sum uint64
		for _, t := range from {
			if t.pnn == pnn && t != ip {
				d := refDistance(ip.addr, t.addr)
				sum += d * d
			}
		}
		return sum
	}

	switch alg := in.Algorithm; {
	case alg == ipalloc.Deterministic:
		if !in.NoIPTakeover && num > 0 {
			for i, t := range all {
				t.pnn = i % num
				if h, ok := in.HomeNodes[t.addr]; ok && h >= 0 && h < num {
					t.pnn = h
				}
			}
		}
		unassignUnsuitable()
		basicAllocateUnassigned()

	case alg == ipalloc.NonDeterministic:
		unassignUnsuitable()
		basicAllocateUnassigned()
		if in.NoIPFailback {
			break
		}
		retries := 0
	tryAgain:
		for _, t := range all {
			if t.pnn == -1 {
				continue
			}
			maxNode, minNode, maxNum, minNum := -1, -1, 0, 0
			for i := range num {
				if !canTakeover(i, t) {
					continue
				}
				c := coverage(i)
				if maxNode == -1 || c > maxNum {
					maxNode, maxNum = i, c
				}
				if minNode == -1 || c < minNum {
					minNode, minNum = i, c
				}
			}
			if maxNode == -1 {
				continue
			}
			if maxNum > minNum+1 && retries < len(all)+5 {
				for _, tt := range all {
					if tt.pnn == maxNode {
						findTakeoverNode(tt)
						retries++
						goto tryAgain
					}
				}
			}
		}

	default: // LCP2, LCP2Rebalance and unknown values
		unassignUnsuitable()
		imb := make([]uint64, num)
		cand := make([]bool, num)
		for p := range num {
			for i, t := range all {
				if t.pnn == p {
					imb[p] += dsum(t, all[i+1:], p)
				}
			}
			cand[p] = true
		}
		if alg != ipalloc.LCP2Rebalance {
			for _, t := range all {
				if t.pnn != -1 {
					cand[t.pnn] = false
				}
			}
		}
		for _, p := range in.ForceRebalance {
			if p >= 0 && p < num {
				cand[p] = true
			}
		}

		// lcp2_allocate_unassigned
		for {
			minNode := -1
			var minSum, minImb uint64
			var minIP *rip
			for _, t := range all {
				if t.pnn != -1 {
					continue
				}
				for dst := range num {
					if !canTakeover(dst, t) {
						continue
					}
					s := dsum(t, all, dst)
					if minNode == -1 || s < minSum {
						minNode, minSum, minImb, minIP = dst, s, imb[dst]+s, t
					}
				}
			}
			if minNode == -1 {
				break
			}
			minIP.pnn = minNode
			imb[minNode] = minImb
		}
		if in.NoIPFailback || !slices.Contains(cand, true) {
			break
		}

		// lcp2_failback
		for {
			type ip struct {
				imb uint64
				pnn int
			}
			var lips []ip
			for p := range num {
				lips = append(lips, ip{imb[p], p})
			}
			sort.SliceStable(lips, func(i, j int) bool { return lips[i].imb > lips[j].imb })
			again := false
			for _, l := range lips {
				if l.imb == 0 {
					break
				}
				src := l.pnn
				var minIP *rip
				minDst := -1
				var minSrcImb, minDstImb uint64
				for _, t := range all {
					if t.pnn != src {
						continue
					}
					srcSum := dsum(t, all, src)
					srcImb := imb[src] - srcSum
					for dst := range num {
						if !cand[dst] || !canTakeover(dst, t) {
							continue
						}
						dstSum := dsum(t, all, dst)
						dstImb := imb[dst] + dstSum
						if dstImb < imb[src] && dstSum < srcSum &&
							(minDst == -1 || srcImb+dstImb < minSrcImb+minDstImb) {
							minIP, minDst, minSrcImb, minDstImb = t, dst, srcImb, dstImb
						}
					}
				}
				if minDst != -1 {
					imb[src], imb[minDst] = minSrcImb, minDstImb
					minIP.pnn = minDst
					again = true
					break
				}
			}
			if !again {
				break
			}
		}
	}

	out := make([]ipalloc.Assignment, len(all))
	for i, t := range all {
		out[i] = ipalloc.Assignment{Addr: t.addr, PNN: t.pnn}
	}
	return out
}

// refBefore orders addresses as ipalloc documents: IPv6 first, then
// descending by value.
func refBefore(a, b netip.Addr) bool {
	if a.Is6() != b.Is6() {
		return a.Is6()
	}
	x, y := a.As16(), b.As16()
	return bytes.Compare(x[:], y[:]) > 0
}

// refDistance is CTDB's ip_distance on 128-bit keys (IPv4 in the low 32
// bits), 96 across families.
func refDistance(a, b netip.Addr) uint64 {
	if a.Is4() != b.Is4() {
		return 96
	}
	var ka, kb [16]byte
	if a.Is4() {
		x, y := a.As4(), b.As4()
		copy(ka[12:], x[:])
		copy(kb[12:], y[:])
	} else {
		ka, kb = a.As16(), b.As16()
	}
	var d uint64
	for w := 0; w < 16; w += 4 {
		x := uint32(ka[w])<<24 | uint32(ka[w+1])<<16 | uint32(ka[w+2])<<8 | uint32(ka[w+3])
		y := uint32(kb[w])<<24 | uint32(kb[w+1])<<16 | uint32(kb[w+2])<<8 | uint32(kb[w+3])
		if x == y {
			d += 32
		} else {
			d += uint64(bits.LeadingZeros32(x ^ y))
		}
	}
	return d
}
