package ipalloc

import (
	"cmp"
	"slices"
	"strconv"
)

// LCP2 (CTDB's ipalloc_lcp2.c). The cost of address x on node n is the sum
// of distance² from x to every other address on n; a node's imbalance is
// the sum of distance² over the pairs of addresses it holds. Unassigned
// addresses are placed one at a time, cheapest (address, node) pair first;
// then failback moves one address at a time from the most imbalanced node
// while that lowers the imbalance.
//
// CTDB recomputes the sums over all addresses for every candidate, which is
// O(U²·N·I) to place U addresses. Here cost[x*n+p] holds the cost of x on p
// for every address x and node p, and is updated in O(I) when an address
// is placed or moved; the cheapest node for each unassigned address is kept
// in a tournament tree over the nodes. Ties are broken exactly as CTDB's
// loops do: first address in order, then lowest PNN. Sums are 64-bit, so
// they do not wrap as CTDB's 32-bit ones do.

// lcp2 runs LCP2. rebalanceAll lets failback move addresses onto every
// node (LCP2Rebalance) instead of only onto nodes that held none after the
// unsuitable addresses were unassigned, plus the force list.
func (s *state) lcp2(rebalanceAll bool, force []int, noFailback bool) {
	s.unassignUnsuitable()

	n := s.n
	cost := make([]uint64, len(s.ips)*n)
	for j, h := range s.holder {
		if h == -1 {
			continue
		}
		kj := &s.ips[j].key
		for i := range s.ips {
			if i != j {
				cost[i*n+h] += distance2(&s.ips[i].key, kj)
			}
		}
	}
	// Every pair on a node was counted from both ends.
	imb := make([]uint64, n)
	for i, h := range s.holder {
		if h != -1 {
			imb[h] += cost[i*n+h]
		}
	}
	for p := range imb {
		imb[p] /= 2
	}

	// Rebalance candidates: the nodes holding nothing now. A node that
	// holds an address was healthy before and is left alone, so failback
	// does not move addresses for minor gains (CTDB's reasoning).
	candidate := make([]bool, n)
	for p := range candidate {
		candidate[p] = true
	}
	if !rebalanceAll {
		for _, h := range s.holder {
			if h != -1 {
				candidate[h] = false
			}
		}
	}
	for _, p := range force {
		if p < 0 || p >= n {
			s.note("force-rebalance node " + strconv.Itoa(p) + " ignored: no such node")
			continue
		}
		s.note("forcing rebalancing of addresses to node " + strconv.Itoa(p))
		candidate[p] = true
	}

	s.lcp2AllocateUnassigned(cost, imb)

	if noFailback || !slices.Contains(candidate, true) {
		return
	}
	s.lcp2Failback(cost, imb, candidate)
}

// lcp2AllocateUnassigned places unassigned addresses one at a time: the
// (address, node) pair of least cost over all unassigned addresses and the
// nodes that may take them, ties to the first address in order, then the
// lowest PNN; until none is left or none can be placed.
func (s *state) lcp2AllocateUnassigned(cost, imb []uint64) {
	n := s.n
	var un []int // unassigned addresses, in order
	for i, h := range s.holder {
		if h == -1 {
			un = append(un, i)
		}
	}
	if len(un) == 0 || n == 0 {
		return
	}

	// win[k*size+j], j in 1..size-1, is the winner (cheapest node that may
	// take un[k], lowest PNN among equals; -1 for none) of tree node j.
	// Leaves size..2*size-1 are nodes 0..size-1 and are not stored. The
	// left subtree holds the lower PNNs, so ties go left.
	size := 2
	for size < n {
		size *= 2
	}
	win := make([]int32, len(un)*size)
	leaf := func(i, p int) int32 {
		if p < n && s.canTakeover(p, i) {
			return int32(p)
		}
		return -1
	}
	pick := func(i int, a, b int32) int32 {
		if a < 0 {
			return b
		}
		if b < 0 || cost[i*n+int(a)] <= cost[i*n+int(b)] {
			return a
		}
		return b
	}
	child := func(k, i, c int) int32 {
		if c >= size {
			return leaf(i, c-size)
		}
		return win[k*size+c]
	}
	fix := func(k, i, j int) {
		win[k*size+j] = pick(i, child(k, i, 2*j), child(k, i, 2*j+1))
	}
	for k, i := range un {
		for j := size - 1; j >= 1; j-- {
			fix(k, i, j)
		}
	}

	alive := make([]bool, len(un))
	for k := range alive {
		alive[k] = true
	}
	for left := len(un); left > 0; left-- {
		best, bestNode := -1, int32(-1)
		var bestCost uint64
		for k, i := range un {
			if !alive[k] {
				continue
			}
			p := win[k*size+1]
			if p < 0 {
				continue
			}
			if c := cost[i*n+int(p)]; best == -1 || c < bestCost {
				best, bestNode, bestCost = k, p, c
			}
		}
		if best == -1 {
			return // no address left that any node may take
		}
		x, p := un[best], int(bestNode)
		alive[best] = false
		s.holder[x] = p
		imb[p] += bestCost

		kx := &s.ips[x].key
		for i := range s.ips {
			if i != x {
				cost[i*n+p] += distance2(&s.ips[i].key, kx)
			}
		}
		for k, i := range un {
			if alive[k] && s.canTakeover(p, i) {
				for j := (size + p) / 2; j >= 1; j /= 2 {
					fix(k, i, j)
				}
			}
		}
	}
}

// lcp2Failback repeatedly takes the nodes in order of imbalance (highest
// first, equal ones by PNN) and applies the best move from the first one
// that has one, until no node has.
func (s *state) lcp2Failback(cost, imb []uint64, candidate []bool) {
	var cands []int
	for p, ok := range candidate {
		if ok {
			cands = append(cands, p)
		}
	}
	order := make([]int, s.n)
	for {
		for p := range order {
			order[p] = p
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(imb[b], imb[a]) })
		moved := false
		for _, src := range order {
			if imb[src] == 0 {
				break // every node left holds at most one address
			}
			if s.lcp2FailbackFrom(src, cost, imb, cands) {
				moved = true
				break
			}
		}
		if !moved {
			return
		}
	}
}

// lcp2FailbackFrom finds and applies the best move of one address from
// src to a candidate node, reporting whether there was one. A move must
// leave the destination less imbalanced than src is now and cost the
// destination less than the address costs src; the best move minimises
// src's plus the destination's resulting imbalance (the first one found,
// in address then PNN order, among equals).
func (s *state) lcp2FailbackFrom(src int, cost, imb []uint64, cands []int) bool {
	n := s.n
	bestIP, bestDst := -1, -1
	var bestSrcImb, bestDstImb uint64
	for i, h := range s.holder {
		if h != src {
			continue
		}
		srcCost := cost[i*n+src]
		srcImb := imb[src] - srcCost
		for _, dst := range cands {
			if !s.canTakeover(dst, i) {
				continue
			}
			dstCost := cost[i*n+dst]
			dstImb := imb[dst] + dstCost
			if dstImb < imb[src] && dstCost < srcCost &&
				(bestDst == -1 || srcImb+dstImb < bestSrcImb+bestDstImb) {
				bestIP, bestDst = i, dst
				bestSrcImb, bestDstImb = srcImb, dstImb
			}
		}
	}
	if bestDst == -1 {
		return false
	}
	imb[src], imb[bestDst] = bestSrcImb, bestDstImb
	s.holder[bestIP] = bestDst
	kx := &s.ips[bestIP].key
	for i := range s.ips {
		if i != bestIP {
			d := distance2(&s.ips[i].key, kx)
			cost[i*n+src] -= d
			cost[i*n+bestDst] += d
		}
	}
	return true
}
